"""What each `genlab` command does, on the Python API (genlab.api); the arguments are genlab.cli.parser's.

The options of `eval`, `generate` and `export` are the keyword arguments of the registered tasks' run
handles (and of the evaluation protocols): `add_options` gives them to the command being run.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import shlex
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from genlab import api
from genlab.cli.chat import chat_loop
from genlab.core.recipe import recipe_files, recipe_folders, recipe_purpose
from genlab.core.run import RunDir
from genlab.core.trainer import Interrupted
from genlab.data import IMAGE_DATASETS, load_image_dataset
from genlab.data.audio import AUDIO_DATASETS, audio_sizes, is_synthesized
from genlab.data.catalog import DERIVED_SETS
from genlab.data.text import TEXT_CORPORA, corpus_sizes, is_parsed
from genlab.errors import GenlabError
from genlab.evaluation import compare, pair_reader
from genlab.evaluation.audio_eval import audio_evaluator_info, train_audio_evaluator
from genlab.evaluation.classifier import evaluator_info, train_evaluator
from genlab.evaluation.pair_reader import train_pair_reader
from genlab.evaluation.protocols import PROTOCOLS
from genlab.io.files import atomic_write_text, read_yaml
from genlab.io.validate import check_float, check_int, check_seed, check_text, environ_int, output_file
from genlab.serve import Limits, default_workers, serve
from genlab.sweep.report import is_sweep, write_report
from genlab.sweep.study import SweepConfig, run_sweep
from genlab.tasks import DEFAULT_TASK, TASKS, task_of_run

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
    "text": "what to say or draw: digits '4 0 7' (audio), a sentence (tts), a line of characters (pix2pix)",
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
    "input": "a file to start from",
}
# A task says what an option means for it, where OPTION_HELP's line is not enough, in a Google-style `Args:`
# section of its handle's method docstring (`option_docs`); `genlab generate --help` shows it in its place.
ARGS_SECTION = re.compile(r"^Args:\n((?:(?: {4}.*)?\n?)+)", re.M)
ARG_LINE = re.compile(r"^ {4}(\w+): (.+)$")
HANDLED_BY_THE_CLI = {"stream"}  # the CLI streams whenever a task can: not an option of its own
POSITIONAL = {"recipe", "overrides", "run", "runs", "action", "command"}
# Arguments that name a file or folder: an empty one would mean the working folder, never what a user meant.
PATHS = {"recipe", "run", "runs", "out", "resume", "space", "init", "mask", "low_res", "dataset", "templates", "input"}


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
            if _item(known_tp) is not _item(tp):
                raise TypeError(f"option {param.name} is {known_tp} in one place, {tp} in '{owner}'")
            if typing.get_origin(tp) is list:  # repeatable where any task takes several (--input a --input b)
                found[param.name] = (tp, defaults)
            defaults[owner] = param.default
    return found


def _item(tp: Any) -> Any:
    """list[str] -> str: the type of one value of an option."""
    return typing.get_args(tp)[0] if typing.get_origin(tp) is list else tp


def _one_value_where_one_is_taken(handle: api.RunHandle, method: str, options: dict[str, Any]) -> None:
    """A repeatable option (several values for some task) given to a task whose `method` takes one value:
    pass that one value, or refuse more in one line."""
    hints = typing.get_type_hints(getattr(handle, method))
    for name, value in options.items():
        if isinstance(value, list) and typing.get_origin(_scalar(hints[name])) is not list:
            if len(value) != 1:
                flag = "--" + name.replace("_", "-")
                raise GenlabError(f"a '{handle.task}' run takes one {flag}, got {len(value)}")
            options[name] = value[0]


def option_docs(function: Any) -> dict[str, str]:
    """The `Args:` section of `function`'s docstring: parameter -> what it says (continued lines joined)."""
    section = ARGS_SECTION.search(inspect.getdoc(function) or "")
    found: dict[str, str] = {}
    name = None
    for line in section.group(1).splitlines() if section else []:
        if entry := ARG_LINE.match(line):
            name, found[entry[1]] = entry[1], entry[2]
        elif name and line.strip():
            found[name] += " " + line.strip()
    return found


def task_option_docs(method: str) -> dict[str, dict[str, str]]:
    """option -> {task: what it means for that task}, from the tasks' docstrings (option_docs)."""
    docs: dict[str, dict[str, str]] = {}
    for name, task in TASKS.items():
        for option, text in option_docs(getattr(task.open, method)).items():
            docs.setdefault(option, {})[name] = text
    return docs


def task_options(method: str) -> dict[str, tuple[type, dict[str, Any]]]:
    """Every keyword argument of `method` over the registered tasks: name -> (type, {task: its default}).
    A new task's options reach the CLI without an edit here."""
    return _signature_options({name: getattr(task.open, method) for name, task in TASKS.items()})


def protocol_options() -> dict[str, tuple[type, dict[str, Any]]]:
    """Every keyword argument of the evaluation protocols' score functions (genlab.evaluation.protocols)."""
    return _signature_options({f"--protocol {name}": p.score for name, p in PROTOCOLS.items()})


def _add_options(
    parser: argparse.ArgumentParser,
    options: dict[str, tuple[type, dict[str, Any]]],
    meaning: dict[str, str] | None = None,
    own: dict[str, dict[str, str]] | None = None,
) -> None:
    """One --option per keyword argument; `meaning` says what an option means in this command where OPTION_HELP's
    general line would list meanings it does not have here, `own` what it means for each task (task_option_docs)."""
    for option, (tp, defaults) in options.items():
        # SUPPRESS: an option not given is not passed on, so each task keeps its own default
        repeated = typing.get_origin(tp) is list  # list[str]: the option is given once per item
        if tp is bool:  # --x / --no-x: argparse's bool("false") would be True
            how: dict[str, Any] = {"action": argparse.BooleanOptionalAction}
        else:
            how = {"type": typing.get_args(tp)[0] if repeated else tp, "action": "append" if repeated else "store"}
        parser.add_argument(
            "--" + option.replace("_", "-"),
            dest=option,
            default=argparse.SUPPRESS,
            help=_option_help(option, defaults, (meaning or {}).get(option), (own or {}).get(option, {})),
            **how,
        )


def _option_help(option: str, defaults: dict[str, Any], meaning: str | None, own: dict[str, str]) -> str:
    """What `option` does, then each owner (task or protocol) that takes it with its default, and its own
    meaning where its docstring gives one: "sample among the k likeliest tokens (lm: all tokens unless set;
    folk: 0 = all tokens, default 0; ...)". Without a general line, the owners' meanings alone."""
    general = meaning or OPTION_HELP.get(option)
    own = {} if meaning else own
    owners = []
    for owner, default in defaults.items():
        shown = f"default {default}" if default is not None else ""
        if owner in own:
            owners.append(f"{owner}: {own[owner]}" + (f", {shown}" if shown else ""))
        else:
            owners.append(f"{owner}: {default}" if default is not None else owner)
    if general is None and own:
        return "; ".join(owners)
    return f"{general or option} ({('; ' if own else ', ').join(owners)})"


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
            _check_argument(name, label, item)


def _check_argument(name: str, label: str, item: Any) -> None:
    if isinstance(item, bool) or not isinstance(item, (int, float, str)):
        return
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
    _list_derived_sets()


def _list_derived_sets() -> None:
    print(f"\n{'made from':<15} {'here?':<6} what (recipes)")
    for entry in DERIVED_SETS:
        missing = entry.missing()
        print(f"{entry.name:<15} {'no' if missing else 'yes':<6} {entry.what} ({entry.recipes})")
        if missing:
            print(f"{'':<22} missing: {missing}")


def _cmd_recipes(args: argparse.Namespace) -> None:
    shipped = recipe_folders()[-1]
    print(f"{'recipe':<26} {'task':<17} purpose")
    for name, path in recipe_files().items():
        try:
            tree = read_yaml(path, "recipe")
            task = str(tree.get("task", DEFAULT_TASK)) if isinstance(tree, dict) else "-"
            purpose = recipe_purpose(path)
        except GenlabError as exc:  # a broken recipe of the user's own is listed, not fatal
            task, purpose = "-", f"unreadable: {exc}"
        mark = "" if path.parent == shipped else "*"
        print(f"{name + mark:<26} {task:<17} {purpose}")
    print(f"\nshipped with genlab: {shipped}")
    if len(recipe_folders()) > 1:
        folders = ", ".join(str(folder) for folder in recipe_folders()[:-1])
        print(f"* from $GENLAB_RECIPES ({folders}), searched before the shipped ones")
    print("train one: genlab train NAME [key.sub=value ...] [--out RUN]; or give a recipe file's path")


def _cmd_train(args: argparse.Namespace) -> None:
    if args.resume:
        overrides = ([args.recipe] if args.recipe else []) + args.overrides
        run_path, report = api.fit(args.resume, args.out, overrides, resume=True)
    else:
        if not args.recipe:
            raise GenlabError("name a recipe (a YAML file, or a name `genlab recipes` lists), or pass --resume RUN")
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
        _one_value_where_one_is_taken(handle, "evaluate", options)
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


def _items_for_path(handle: api.RunHandle, options: dict[str, Any], out: Path | None) -> None:
    """One rule for every medium and task: --out FILE (a name with a suffix: one.png, seven.wav) means one item
    unless --n says more; a FOLDER means many (the task's own default n). Sets options["n"] where it applies."""
    if out is not None and out.suffix and "n" not in options and "n" in handle.options("generate"):
        options["n"] = 1


def _cmd_generate(args: argparse.Namespace) -> None:
    handle = api.load(args.run, args.checkpoint)
    options: dict[str, Any] = {k: getattr(args, k) for k in task_options("generate") if hasattr(args, k)}
    handle.check_options("generate", options)
    _one_value_where_one_is_taken(handle, "generate", options)
    out = Path(args.out) if args.out else None
    _items_for_path(handle, options, out)
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
        args.workers,
        args.worker_timeout,
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
        out = Path(args.out) if args.out else Path(__file__).parents[1] / "evaluation" / "weights"
        kwargs = {"epochs": args.epochs} if args.epochs is not None else {}
        if args.data in AUDIO_DATASETS:
            info = train_audio_evaluator(out, seed=args.seed, **kwargs)
        elif args.data == pair_reader.NAME:
            info = train_pair_reader(out, seed=args.seed, **kwargs)
        else:
            info = train_evaluator(args.data, out, seed=args.seed, **kwargs)
        print(json.dumps(info, indent=2))
        return
    for name in (*IMAGE_DATASETS, pair_reader.NAME):
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


def add_options(command: str, parser: argparse.ArgumentParser) -> None:
    """The options of `command` that the registered tasks, the protocols or the server give (genlab.cli.parser)."""
    if command == "eval":
        parser.add_argument(
            "--protocol",
            help="score by an evaluation protocol instead of the task's own test: "
            + ("; ".join(f"{p.name} = {p.summary}" for p in PROTOCOLS.values()) or "none yet")
            + " (docs/paradigms.md)",
        )
        _add_options(parser, _eval_options(), own=task_option_docs("evaluate"))
    elif command == "generate":
        _add_options(parser, task_options("generate"), own=task_option_docs("generate"))
    elif command == "export":
        steps = {"steps": "sampling steps unrolled into the graph"}
        _add_options(parser, task_options("export_graph"), steps, task_option_docs("export_graph"))
    elif command == "serve":
        parser.add_argument(
            "--max-batch",
            type=int,
            default=Limits.max_batch,
            help=f"sequences decoded together per model (default {Limits.max_batch})",
        )
        parser.add_argument(
            "--max-queue",
            type=int,
            default=Limits.max_queue,
            help=f"requests waiting per model before 429 (default {Limits.max_queue})",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=default_workers(),
            help="processes, each with its own copy of the models, sharing the port "
            f"(default: one per usable core, at most 4; here {default_workers()})",
        )
        parser.add_argument(
            "--worker-timeout",
            type=float,
            default=30.0,
            help="with several workers: replace one that has not answered its health probe for this many seconds "
            "(default 30)",
        )


COMMANDS = {
    "data": _cmd_data,
    "recipes": _cmd_recipes,
    "train": _cmd_train,
    "eval": _cmd_eval,
    "generate": _cmd_generate,
    "export": _cmd_export,
    "serve": _cmd_serve,
    "chat": chat_loop,
    "sweep": _cmd_sweep,
    "report": _cmd_report,
    "eval-nets": _cmd_eval_nets,
}
# Interrupted: for the error boundary of genlab.cli.main(); check_arguments: run before every command
__all__ = ["COMMANDS", "Interrupted", "add_options", "check_arguments"]
