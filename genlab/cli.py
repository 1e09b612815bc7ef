"""`genlab data|train|eval|generate|serve|sweep|report|eval-nets`: a thin layer on the Python API (genlab.api).

The CLI names no task: it asks the registry (genlab.tasks) and the run handles. Every error a user can
cause is one line on stderr and exit status 2; anything else is a bug, one line and exit status 70
(docs/reliability.md).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shlex
import sys
import typing
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from genlab import api
from genlab.core.run import RunDir
from genlab.core.trainer import Interrupted
from genlab.data import IMAGE_DATASETS, load_image_dataset
from genlab.data.audio import AUDIO_DATASETS, audio_sizes, is_synthesized
from genlab.data.text import TEXT_CORPORA, corpus_sizes, is_parsed
from genlab.errors import GenlabError
from genlab.evaluation import compare
from genlab.evaluation.audio_eval import audio_evaluator_info, train_audio_evaluator
from genlab.evaluation.classifier import evaluator_info, train_evaluator
from genlab.evaluation.protocols import PROTOCOLS
from genlab.io.files import atomic_write_text
from genlab.io.validate import check_float, check_int, check_seed, check_text, environ, environ_int, output_file
from genlab.serve import Limits, serve
from genlab.sweep.report import is_sweep, write_report
from genlab.sweep.study import SweepConfig, run_sweep
from genlab.tasks import TASKS, task_of_run

# What the options of `generate` and `eval` mean, where several tasks share one. The options themselves are
# the keyword arguments of the registered tasks' RunHandle.generate / .evaluate (see task_options).
OPTION_HELP = {
    "n": "how many samples",
    "label": "class to generate (conditional models)",
    "seed": "random seed",
    "prompt": "text to continue, transform or classify",
    "max_tokens": "new tokens at most",
    "temperature": "0 = greedy",
    "top_k": "sample among the k likeliest tokens",
    "top_p": "sample among the likeliest tokens covering p",
    "stop": "end the text before this string",
    "presence_penalty": "in [-2, 2]: lower a token's score once it was generated (> 0: fewer repeats)",
    "frequency_penalty": "in [-2, 2]: lower a token's score per time it was generated (> 0: fewer repeats)",
    "text": "digits to say, e.g. '4 0 7'",
    "attack": "fgsm or pgd (L-inf)",
    "epsilon": "L-inf attack radius (pixels in [0, 1])",
    "steps": "attack steps (image_classifier) or sampling steps (flow)",
    "restarts": "PGD random restarts",
    "limit": "score only this many test examples (0 = all)",
    "guidance": "classifier-free guidance weight (0 = off)",
    "init": "an image file to edit (SDEdit)",
    "strength": "how far to re-noise --init, in (0, 1]",
    "mask": "an image file: white = fill in, black = keep --init",
    "low_res": "a small image to super-resolve",
    "kinds": "comma-separated noise kinds",
    "rates": "comma-separated perturbation rates in [0, 1]",
    "dataset": "a labelled data set name or .jsonl file",
    "templates": "prompt templates: a name or a YAML file",
    "k": "worked examples per class in the prompt",
    "seeds": "seeds of example choice and order",
    "query_tokens": "tokens kept for the test text",
}
HANDLED_BY_THE_CLI = {"stream"}  # the CLI streams whenever a task can: not an option of its own
POSITIONAL = {"recipe", "overrides", "run", "runs", "action", "command"}
# Arguments that name a file or folder: an empty one would mean the working folder, never what a user meant.
PATHS = {"recipe", "run", "runs", "out", "resume", "space", "init", "mask", "low_res", "dataset", "templates"}
# What str.splitlines breaks at, shown escaped (\n, \x0c) so that an error stays one line.
LINE_BREAKS = str.maketrans({c: ascii(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})
EXIT_BAD_INPUT, EXIT_BUG, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 2, 70, 130, 141  # 70: sysexits' EX_SOFTWARE


def _scalar(tp: Any) -> type:
    """int | None -> int: the type argparse converts an option's text to."""
    options = [t for t in typing.get_args(tp) if t is not type(None)] or [tp]
    return options[0]


def _signature_options(functions: dict[str, Any]) -> dict[str, tuple[type, dict[str, Any]]]:
    """owner -> function whose first parameter (self, a handle) is skipped: every other keyword argument as
    name -> (type, {owner: its default}). One name must have one type everywhere."""
    found: dict[str, tuple[type, dict[str, Any]]] = {}
    for owner, function in functions.items():
        hints = typing.get_type_hints(function)
        for param in list(inspect.signature(function).parameters.values())[1:]:
            if param.name in HANDLED_BY_THE_CLI:
                continue
            tp = _scalar(hints[param.name])
            known_tp, defaults = found.setdefault(param.name, (tp, {}))
            if known_tp is not tp:
                raise TypeError(f"option {param.name} is {known_tp.__name__} in one place, {tp.__name__} in '{owner}'")
            defaults[owner] = param.default
    return found


def task_options(method: str) -> dict[str, tuple[type, dict[str, Any]]]:
    """Every keyword argument of `method` over the registered tasks: name -> (type, {task: its default}).
    A new task's options reach the CLI without an edit here."""
    return _signature_options({name: getattr(task.open, method) for name, task in TASKS.items()})


def protocol_options() -> dict[str, tuple[type, dict[str, Any]]]:
    """Every keyword argument of the evaluation protocols' score functions (genlab.evaluation.protocols)."""
    return _signature_options({f"--protocol {name}": p.score for name, p in PROTOCOLS.items()})


def _add_options(parser: argparse.ArgumentParser, options: dict[str, tuple[type, dict[str, Any]]]) -> None:
    for option, (tp, defaults) in options.items():
        where = ", ".join(
            f"{owner}: {default}" if default is not None else owner for owner, default in defaults.items()
        )
        # SUPPRESS: an option not given is not passed on, so each task keeps its own default
        parser.add_argument(
            "--" + option.replace("_", "-"),
            dest=option,
            type=tp,
            default=argparse.SUPPRESS,
            help=f"{OPTION_HELP.get(option, option)} ({where})",
        )


def _eval_options() -> dict[str, tuple[type, dict[str, Any]]]:
    """`genlab eval`'s options: the tasks' evaluate keywords and the protocols' (one type per name)."""
    options = task_options("evaluate")
    for name, (tp, defaults) in protocol_options().items():
        known_tp, known = options.setdefault(name, (tp, {}))
        if known_tp is not tp:
            raise TypeError(f"option {name} is {known_tp.__name__} for a task, {tp.__name__} for a protocol")
        known.update(defaults)
    return options


def check_arguments(args: argparse.Namespace) -> None:
    """Every argument in its type's real range before a command runs: integers in 64 bits (a seed in
    0..2**32-1), numbers finite, text UTF-8, paths not empty (rules in genlab.io.validate)."""
    for name, value in vars(args).items():
        label = name.upper() if name in POSITIONAL else "--" + name.replace("_", "-")
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool) or not isinstance(item, (int, float, str)):
                continue
            if isinstance(item, int):
                (check_seed if name == "seed" else check_int)(label, item)
            elif isinstance(item, float):
                check_float(label, item)
            elif name in PATHS and item == "":
                raise GenlabError(f"{label} is empty: name a file or folder")
            else:
                check_text(label, item)


def _cmd_data(args: argparse.Namespace) -> None:
    print(f"{'name':<15} {'train':>7} {'test':>7} {'classes':>7}  source")
    for name in IMAGE_DATASETS:
        try:
            data = load_image_dataset(name)
            print(
                f"{name:<15} {len(data.train_labels):>7} {len(data.test_labels):>7} "
                f"{data.num_classes:>7}  {data.source}"
            )
        except GenlabError as exc:
            print(f"{name:<15} {'-':>7} {'-':>7} {'-':>7}  unavailable: {exc}")
    print(f"\n{'text corpus':<15} {'train':>7} {'valid':>7} {'test':>7}  source (records per split)")
    for name, corpus in TEXT_CORPORA.items():
        if not is_parsed(name):  # listing must stay fast: never parse a whole Bible here
            print(f"{name:<15} {'-':>7} {'-':>7} {'-':>7}  {corpus.source}: not parsed yet (first use takes ~2 min)")
            continue
        try:
            sizes = corpus_sizes(name)
            print(f"{name:<15} {sizes['train']:>7} {sizes['validation']:>7} {sizes['test']:>7}  {corpus.source}")
        except GenlabError as exc:
            print(f"{name:<15} {'-':>7} {'-':>7} {'-':>7}  unavailable: {exc}")
    print(f"\n{'audio data':<15} {'train':>7} {'test':>7} {'human':>7} {'speakers':>8}  source")
    for name, source in AUDIO_DATASETS.items():
        if not is_synthesized(name):  # listing must stay fast: never synthesize the corpus here
            print(
                f"{name:<15} {'-':>7} {'-':>7} {'-':>7} {'-':>8}  {source}: not synthesized yet "
                "(first use takes ~2 min)"
            )
            continue
        try:
            sizes = audio_sizes(name)
            print(
                f"{name:<15} {sizes['train']:>7} {sizes['test']:>7} {sizes['human']:>7} "
                f"{sizes['speakers']:>8}  {source}"
            )
        except GenlabError as exc:
            print(f"{name:<15} {'-':>7} {'-':>7} {'-':>7} {'-':>8}  unavailable: {exc}")


def _cmd_train(args: argparse.Namespace) -> None:
    if args.resume:
        overrides = ([args.recipe] if args.recipe else []) + args.overrides
        run_path, report = api.fit(args.resume, args.out, overrides, resume=True)
    else:
        if not args.recipe:
            raise GenlabError("name a recipe (a YAML file or one of recipes/), or pass --resume RUN")
        run_path, report = api.fit(args.recipe, args.out, args.overrides)
    if environ_int("RANK", 0) == 0:
        cost = report["cost"]
        print(
            f"trained {cost['steps']} steps ({cost['periods']} periods) in {cost['train_seconds']:.0f} s; "
            f"run: {run_path}"
        )


def _cmd_eval(args: argparse.Namespace) -> None:
    handle = api.load(args.run, args.checkpoint)
    options: dict[str, Any] = {k: getattr(args, k) for k in _eval_options() if hasattr(args, k)}
    if args.protocol:
        metrics = handle.evaluate_protocol(args.protocol, **options)
    else:
        handle.check_options("evaluate", options)
        metrics = handle.evaluate(**options)
    print(json.dumps(metrics, indent=2, ensure_ascii=False))
    print(f"written to {handle.run.report_path}")


def _cmd_export(args: argparse.Namespace) -> None:
    handle = api.load(args.run, args.checkpoint)
    if args.out is None:
        raise GenlabError("pass --out FILE.onnx")
    options: dict[str, Any] = {k: getattr(args, k) for k in task_options("export_graph") if hasattr(args, k)}
    description = handle.export(args.out, **options)
    inputs = ", ".join(f"{name} {tuple(spec['shape'])}" for name, spec in description["inputs"].items())
    ((output, spec),) = description["output"].items()
    check = description["check"]
    print(
        f"wrote {args.out} ({description['bytes'] / 1e6:.1f} MB): {inputs} -> {output} {tuple(spec['shape'])}; "
        f"{check['runtime']} matches PyTorch to {check['max_abs_difference']:.1e} on a batch of {check['batch']}"
    )
    print(f"wrote {Path(args.out).with_suffix('.json')} (what the inputs and the output mean)")


def _print_stream(prompt: str, pieces: Iterator[str]) -> None:
    first = next(pieces, "")  # bad input fails here, before anything is printed
    print(prompt + first, end="", flush=True)
    for piece in pieces:
        print(piece, end="", flush=True)
    print()


def _cmd_generate(args: argparse.Namespace) -> None:
    handle = api.load(args.run, args.checkpoint)
    options: dict[str, Any] = {k: getattr(args, k) for k in task_options("generate") if hasattr(args, k)}
    handle.check_options("generate", options)
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix:  # a file (not a folder of files): never a folder, a device or a lost link
        output_file(out)
    elif out is not None and not out.parent.is_dir():
        raise GenlabError(f"--out {out}: folder {out.parent} does not exist")
    suffixes = handle.output_suffixes  # runs that generate files (images): checked before any sampling
    if suffixes and (out is None or out.suffix not in suffixes):
        files = " or ".join(suffix for suffix in suffixes if suffix)
        folder = " (or a FOLDER)" if "" in suffixes else ""  # "" in output_suffixes: a folder of files
        raise GenlabError(
            f"a '{handle.task}' run writes files: pass --out FILE ending in {files}{folder}"
            + (f", not {out}" if out is not None else "")
        )
    if out is None and "stream" in handle.options("generate"):
        _print_stream(options.get("prompt", ""), handle.generate(**options, stream=True))
        return
    result = handle.generate(**options)
    if suffixes:
        result.save(out)
        print(f"wrote {len(result)} samples to {out}")
    elif out is not None:
        atomic_write_text(out, f"{result}\n")
        print(f"wrote {out}")
    else:
        print(result)


def _cmd_serve(args: argparse.Namespace) -> None:
    if not 1 <= args.port <= 65535:
        raise GenlabError(f"--port must be in 1..65535, got {args.port}")
    if args.max_batch < 1 or args.max_queue < 1:
        raise GenlabError("--max-batch and --max-queue must be at least 1")
    serve(
        args.runs,
        args.host,
        args.port,
        args.api_key,
        Limits(max_batch=args.max_batch, max_queue=args.max_queue),
        args.checkpoint,
    )


def _cmd_sweep(args: argparse.Namespace) -> None:
    run_sweep(
        SweepConfig(
            args.recipe,
            args.overrides,
            args.space,
            args.trials,
            args.minutes,
            args.workers,
            args.storage,
            args.study,
            args.out,
            args.worker_index,
        )
    )


def _report_sweep(args: argparse.Namespace) -> None:
    if len(args.runs) != 1:
        raise GenlabError(f"{args.runs[0]} is a sweep: report one sweep folder at a time")
    markdown, figures = write_report(args.runs[0], args.out)
    print(markdown.read_text(encoding="utf-8"))
    for path in (markdown, *figures):
        print(f"wrote {path}")


def _cmd_report(args: argparse.Namespace) -> None:
    if any(is_sweep(path) for path in args.runs):  # a sweep folder (sweep.json) gets the sweep report
        _report_sweep(args)
        return
    args.out = args.out or "reports"
    rows = []
    for path in args.runs:  # every run is read before --out is touched: a bad run leaves nothing half-written
        run = RunDir(path)
        if not run.path.is_dir():
            raise GenlabError(f"{path}: no such run folder")
        task = task_of_run(run)
        rows.append(task.compare_row(run, task.recipe(run.read_config())))
    table = compare.render_table(rows)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenlabError(f"--out {out}: cannot create the folder ({exc.strerror})") from None
    markdown, figure = out / "report.md", out / "quality_vs_cost.png"
    command = shlex.join(["genlab", "report", *args.runs, "--out", args.out])
    atomic_write_text(markdown, f"{table}\nMade by `{command}`.\n")
    compare.plot(rows, figure)
    print(table)
    print(f"wrote {markdown}")
    print(f"wrote {figure}")


def _cmd_eval_nets(args: argparse.Namespace) -> None:
    if args.action == "train":
        out = Path(args.out) if args.out else Path(__file__).parent / "evaluation" / "weights"
        kwargs = {"epochs": args.epochs} if args.epochs is not None else {}
        if args.data in AUDIO_DATASETS:
            info = train_audio_evaluator(out, seed=args.seed, **kwargs)
        else:
            info = train_evaluator(args.data, out, seed=args.seed, **kwargs)
        print(json.dumps(info, indent=2))
        return
    for name in IMAGE_DATASETS:
        try:
            info = evaluator_info(name)
            print(f"{name:<15} test accuracy {info['test_accuracy']:.4f}  sha256 {info['sha256'][:16]}…")
        except GenlabError as exc:
            print(f"{name:<15} {exc}")
    for name in AUDIO_DATASETS:
        try:
            info = audio_evaluator_info()
            print(
                f"{name:<15} test accuracy {info['test_accuracy']:.4f}  sha256 {info['sha256'][:16]}…  "
                f"(held-out voices; human recordings {info['human_accuracy']:.0%})"
            )
        except GenlabError as exc:
            print(f"{name:<15} {exc}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genlab", description="Pretrain, fine-tune, evaluate and generate with small generative models."
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error (anywhere)")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="list the data sets and where they were found")
    data.add_argument("action", choices=["list"])
    data.set_defaults(func=_cmd_data)

    train = commands.add_parser("train", help="train a recipe into a run directory")
    train.add_argument("recipe", nargs="?", help="recipe YAML file or name in recipes/")
    train.add_argument("overrides", nargs="*", help="key.sub=value overrides (before or after the options)")
    train.add_argument("--out", help="run directory (default runs/<recipe name>)")
    train.add_argument("--resume", metavar="RUN", help="continue the run in RUN from its last checkpoint")
    train.set_defaults(func=_cmd_train)

    evaluate = commands.add_parser("eval", help="score a run on held-out data; writes report.json")
    evaluate.add_argument("run")
    evaluate.add_argument(
        "--protocol",
        help="score by an evaluation protocol instead of the task's own test: "
        + ("; ".join(f"{p.name} = {p.summary}" for p in PROTOCOLS.values()) or "none yet")
        + " (docs/paradigms.md)",
    )
    _add_options(evaluate, _eval_options())
    evaluate.add_argument(
        "--checkpoint",
        choices=["last", "best"],
        default="last",
        help="best = the period with the best quick score during training",
    )
    evaluate.set_defaults(func=_cmd_eval)

    generate = commands.add_parser(
        "generate",
        help="images to --out FILE.png/.npy; text runs: stream a "
        "continuation of --prompt; fine-tuned runs: answer --prompt",
    )
    generate.add_argument("run")
    _add_options(generate, task_options("generate"))
    generate.add_argument(
        "--out", help="write the result here: FILE.png (grid) or FILE.npy for images, a text file otherwise"
    )
    generate.add_argument("--checkpoint", choices=["last", "best"], default="last")
    generate.set_defaults(func=_cmd_generate)

    export = commands.add_parser(
        "export", help="write a run's network as ONNX (FILE.onnx + FILE.json), checked against PyTorch with onnxruntime"
    )
    export.add_argument("run")
    export.add_argument("--out", help="FILE.onnx")
    _add_options(export, task_options("export_graph"))
    export.add_argument("--checkpoint", choices=["last", "best"], default="last")
    export.set_defaults(func=_cmd_export)

    server = commands.add_parser("serve", help="serve runs over HTTP: OpenAI-compatible API, playground at /")
    server.add_argument("runs", nargs="+", metavar="RUN", help="run folders; each is the model named by its folder")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=8000)
    server.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on /v1 (default: $GENLAB_API_KEY)")
    server.add_argument(
        "--max-batch",
        type=int,
        default=Limits.max_batch,
        help=f"sequences decoded together per model (default {Limits.max_batch})",
    )
    server.add_argument(
        "--max-queue",
        type=int,
        default=Limits.max_queue,
        help=f"requests waiting per model before 429 (default {Limits.max_queue})",
    )
    server.add_argument("--checkpoint", choices=["last", "best"], default="last")
    server.set_defaults(func=_cmd_serve)

    sweep = commands.add_parser(
        "sweep",
        help="search hyperparameters with Optuna: each trial is a run in sweeps/<study>/trial-NNNN (docs/sweeps.md)",
    )
    sweep.add_argument("recipe", help="recipe YAML file or name in recipes/")
    sweep.add_argument("overrides", nargs="*", help="key.sub=value overrides fixed for every trial")
    sweep.add_argument("--space", required=True, help="search space YAML: objective, sampler, pruner, params")
    sweep.add_argument(
        "--trials", type=int, required=True, help="finished (complete or pruned) trials the study should hold in total"
    )
    sweep.add_argument("--minutes", type=float, default=0.0, help="start no new trial after this many minutes")
    sweep.add_argument("--workers", type=int, default=1, help="worker processes sharing the study (default 1)")
    sweep.add_argument(
        "--storage",
        help="an RDB URL (sqlite:///..., postgresql://...); default: a journal file sweeps/<study>/journal.log",
    )
    sweep.add_argument("--study", help="study name (default <recipe>-<space file name>)")
    sweep.add_argument("--out", default="sweeps", help="folder of studies (default sweeps/)")
    sweep.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)  # set by --workers for its processes
    sweep.set_defaults(func=_cmd_sweep)

    report = commands.add_parser(
        "report",
        help="compare runs: a Markdown table and a quality-vs-cost plot "
        "from their report.json; or report a sweep folder",
    )
    report.add_argument("runs", nargs="+", metavar="RUN", help="run folders (evaluated), or one sweep folder")
    report.add_argument(
        "--out",
        help="folder for report.md and quality_vs_cost.png (default reports/; "
        "for a sweep folder, the sweep folder itself)",
    )
    report.set_defaults(func=_cmd_report)

    nets = commands.add_parser("eval-nets", help="the fixed classifier networks behind FID/precision/recall")
    nets.add_argument("action", choices=["list", "train"])
    nets.add_argument("--data", default="mnist", help="mnist, fashion-mnist or spoken-digits (default mnist)")
    nets.add_argument("--epochs", type=int)
    nets.add_argument("--seed", type=int, default=0)
    nets.add_argument("--out", help="folder for the weights (default: the package's shipped folder)")
    nets.set_defaults(func=_cmd_eval_nets)
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """argparse, except that `genlab train` takes its key=value overrides before or after the options."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command in ("train", "sweep"):
        late = [a for a in extra if "=" in a and not a.startswith("-")]
        args.overrides = list(args.overrides) + late
        extra = [a for a in extra if a not in late]
        # `genlab train --out X recipe a=b`: the recipe slot took an override
        if args.recipe and "=" in args.recipe and not getattr(args, "resume", None):
            parser.error(f"the recipe must come before its overrides, got {args.recipe!r}")
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _split_debug(argv: list[str] | None) -> tuple[list[str], bool]:
    """argv without its `--debug` flags (accepted anywhere before `--`), and whether a traceback was asked for."""
    argv = list(sys.argv[1:] if argv is None else argv)
    end = argv.index("--") if "--" in argv else len(argv)
    kept = [a for a in argv[:end] if a != "--debug"] + argv[end:]
    return kept, len(kept) < len(argv) or environ("GENLAB_DEBUG") not in (None, "0")


def main(argv: list[str] | None = None) -> int:
    """Run one command. The one error boundary: whatever a user's input or files cause is one line on
    stderr — exit 2 for bad input, 130 for Ctrl-C — and a closed stdout (`| head`) ends quietly. Anything
    else is a bug: one line naming the command and the error, exit 70 (the traceback with --debug)."""
    argv, debug = _split_debug(argv)
    args = parse_args(argv)
    plain_format = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: f"genlab: warning: {message}\n"
    try:
        check_arguments(args)
        args.func(args)
    except Interrupted as exc:
        print(f"genlab: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except GenlabError as exc:
        one_line = str(exc).translate(LINE_BREAKS)  # a name the user typed may hold a newline
        print(f"genlab: error: {one_line}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("genlab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away: send the rest of our output nowhere, so Python's exit does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE  # 128 + SIGPIPE, what a shell reports for a command cut off by `head`
    except OSError as exc:  # the machine, not genlab: a full disk, a permission, a file that vanished
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        reason = (str(exc).splitlines() or [""])[0]
        print(f"genlab: error: {type(exc).__name__}{where}: {reason}".translate(LINE_BREAKS), file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # the last resort: validation missed something, which is a bug to report
        if debug:
            raise
        message = (str(exc).splitlines() or [""])[0][:300]
        print(
            f"genlab: internal error in `genlab {args.command}`: {type(exc).__name__}: {message} "
            "(a bug; rerun with --debug or GENLAB_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_BUG
    finally:
        warnings.formatwarning = plain_format
    return 0


if __name__ == "__main__":
    sys.exit(main())
