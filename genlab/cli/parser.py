"""The `genlab` command line's arguments, built without torch: `genlab --help` and `--version` answer at once.

The options of `eval`, `generate`, `export` and `serve` come from the registered tasks and the server
(genlab.cli.commands, which imports the API and torch); they are added only to the command being run, so
only that command pays for them.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from genlab.version import __version__

# Loaded by name once a command runs (genlab.cli.main()) or its task-given options are needed (below): the
# one module of the CLI that imports the API. tests/test_architecture.py holds it to the layer order too.
COMMANDS_MODULE = "genlab.cli.commands"


def load_commands() -> Any:
    """genlab.cli.commands: what each command does, on the Python API."""
    return importlib.import_module(COMMANDS_MODULE)


def _command_name(argv: list[str]) -> str | None:
    """The command `argv` runs: its first word that is not an option (`genlab` itself has only flags)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


# long: one declaration per command and argument, read top to bottom like the --help it prints
def build_parser(argv: list[str] = ()) -> argparse.ArgumentParser:
    """Every command with its own arguments; the command that `argv` runs also gets its task-given options."""
    parser = argparse.ArgumentParser(
        prog="genlab", description="Pretrain, fine-tune, evaluate and generate with small generative models."
    )
    parser.add_argument("--version", action="version", version=f"genlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error (anywhere)")
    subcommands = parser.add_subparsers(dest="command", required=True)
    running = _command_name(list(argv))

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        sub = subcommands.add_parser(name, **kwargs)
        if name == running and name in ("eval", "generate", "export", "serve"):
            load_commands().add_options(name, sub)
        return sub

    data = command("data", help="list the data sets and where they were found")
    data.add_argument("action", nargs="?", choices=["list"], default="list")

    command("recipes", help="list the recipes `genlab train NAME` knows: shipped, and in $GENLAB_RECIPES folders")

    train = command("train", help="train a recipe into a run directory")
    train.add_argument("recipe", nargs="?", help="recipe YAML file or name (`genlab recipes` lists them)")
    train.add_argument("overrides", nargs="*", help="key.sub=value overrides (before or after the options)")
    train.add_argument("--out", help="run directory (default runs/<recipe name>)")
    train.add_argument("--resume", metavar="RUN", help="continue the run in RUN from its last checkpoint")

    evaluate = command("eval", help="score a run on held-out data; writes report.json")
    evaluate.add_argument("run")
    evaluate.add_argument(
        "--checkpoint",
        choices=["last", "best"],
        default="last",
        help="best = the period with the best quick score during training",
    )

    generate = command(
        "generate",
        help="images to --out FILE.png/.npy; text runs: stream a "
        "continuation of --prompt; fine-tuned runs: answer --prompt",
    )
    generate.add_argument("run")
    generate.add_argument(
        "--out",
        help="write the result here: FILE.png (grid) or FILE.npy for images, FILE.wav or a FOLDER for clips, a text "
        "file otherwise; a file means one item unless --n says more, a folder many",
    )
    generate.add_argument("--checkpoint", choices=["last", "best"], default="last")

    export = command(
        "export", help="write a run's network as ONNX (FILE.onnx + FILE.json), checked against PyTorch with onnxruntime"
    )
    export.add_argument("run")
    export.add_argument("--out", help="FILE.onnx")
    export.add_argument("--checkpoint", choices=["last", "best"], default="last")

    chat = command("chat", help="talk with a chat run in the terminal (history kept; Ctrl-D or Ctrl-C leaves)")
    chat.add_argument("run")
    chat.add_argument("--system", help="a system prompt that opens the conversation")
    chat.add_argument("--max-tokens", type=int, default=160, help="longest answer in tokens (default 160)")
    chat.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default), higher = more varied")
    chat.add_argument("--seed", type=int, help="sampling seed (temperature > 0)")
    for penalty in ("presence", "frequency"):
        chat.add_argument(
            f"--{penalty}-penalty", type=float, help="in [-2, 2]; default: the run's (its recipe's decoding section)"
        )
    chat.add_argument("--checkpoint", choices=["last", "best"], default="last")

    server = command("serve", help="serve runs over HTTP: OpenAI-compatible API, playground at /")
    server.add_argument("runs", nargs="+", metavar="RUN", help="run folders; each is the model named by its folder")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=8000)
    server.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on /v1 (default: $GENLAB_API_KEY)")
    server.add_argument("--checkpoint", choices=["last", "best"], default="last")

    sweep = command(
        "sweep",
        help="search hyperparameters with Optuna: each trial is a run in sweeps/<study>/trial-NNNN (docs/sweeps.md)",
    )
    sweep.add_argument("recipe", help="recipe YAML file or name (`genlab recipes` lists them)")
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

    report = command(
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

    nets = command("eval-nets", help="the fixed classifier networks behind FID/precision/recall")
    nets.add_argument("action", choices=["list", "train"])
    nets.add_argument(
        "--data",
        default="mnist",
        help="mnist, fashion-mnist, spoken-digits or moving-mnist (the video frames' pair reader; default mnist)",
    )
    nets.add_argument("--epochs", type=int)
    nets.add_argument("--seed", type=int, default=0)
    nets.add_argument("--out", help="folder for the weights (default: the package's shipped folder)")
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """argparse, except that `genlab train` takes its key=value overrides before or after the options."""
    parser = build_parser(argv)
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
