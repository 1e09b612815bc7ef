"""The Task contract: what a kind of run (gan, lm, finetune, ...) gives the rest of genlab.

A task is one folder, `genlab/tasks/<name>/`, whose `__init__.py` exports `TASK = Task(...)`; the
registry in `genlab/tasks/__init__.py` is the only list of them. Three roles, three names:
- `Task`: the kind of run, named by a recipe's `task:` key and registered once;
- `Training` (genlab.core.training): the object the trainer loop drives for one run (models, optimisers, one step);
- `RunHandle`: a finished or running run opened for use (`genlab.load(run)`): generate, evaluate.
The contract test (tests/test_contract.py) holds every registered task to the same guarantees.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.core.distributed import DistEnv
from genlab.core.recipe import from_dict
from genlab.core.run import CostMeter, RunDir
from genlab.core.training import Training
from genlab.data.images import write_mnist_subset
from genlab.errors import GenlabError
from genlab.evaluation.protocols import get_protocol
from genlab.interop.onnx import ExportGraph, export_onnx
from genlab.io.images import IMAGE_SUFFIXES
from genlab.io.tokenizers import Tokenizer
from genlab.models.transformer import Transformer


@dataclass(frozen=True)
class TextDecoding:
    """What `genlab serve` needs to complete prompts with a run's causal transformer, batched with
    other requests (genlab.models.batching)."""

    model: Transformer
    tokenizer: Tokenizer  # decodes the generated ids
    encode: Callable[[str], list[int]]  # a prompt -> the ids the model continues (seq2seq: source + <bos>)
    stop_ids: frozenset[int] = frozenset()  # ids that end a completion (seq2seq: <eos>)
    chat: bool = False  # the model reads genlab.io.chat_template: /v1/chat/completions serves it too
    presence_penalty: float = 0.0  # a request that leaves a penalty out gets the run's (as vLLM reads a model's
    frequency_penalty: float = 0.0  # generation_config.json)

    def penalties(self, presence: float | None, frequency: float | None) -> tuple[float, float]:
        """A request's (presence, frequency) penalties, the run's where it leaves one out (None)."""
        return (
            self.presence_penalty if presence is None else presence,
            self.frequency_penalty if frequency is None else frequency,
        )


class RunHandle:
    """A run directory opened for use: `genlab.load(path)` returns the task's subclass.

    Subclasses load their model once in `__init__` and implement `generate` and `evaluate`; their
    keyword arguments are the options the CLI offers for that task. `endpoint` says which of the
    server's endpoints serves the run, and the methods that endpoint calls are implemented:
    "completions" -> `text_decoding`; "images" -> `class_names`, `generate_images`;
    "classifications" -> `classify`; "audio" -> `class_names`, `generate_audio`. The server has no code
    of its own for any task.
    """

    output_suffixes: tuple[str, ...] = ()  # a run whose generate returns files (with .save) names their kinds;
    #                                        "" is a folder
    endpoint: str | None = None  # "completions" | "images" | "classifications" | "audio"; None: not served
    eval_section: str = ""  # the report.json section that `evaluate` writes (and `genlab report` reads)

    def __init__(self, run: RunDir, recipe: Any, checkpoint: str):
        self.run, self.recipe, self.checkpoint = run, recipe, checkpoint

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def task(self) -> str:
        return self.recipe.task

    @property
    def report(self) -> dict[str, Any]:
        """The run's report.json as it is now: cost ledger, validation, evaluation sections."""
        return self.run.read_report()

    def generate(self, **options: Any) -> Any:
        raise NotImplementedError

    def evaluate(self, **options: Any) -> dict[str, Any]:
        raise NotImplementedError

    def text_decoding(self) -> TextDecoding:
        raise NotImplementedError

    def reply(self, messages: list[dict[str, str]], **options: Any) -> Iterator[str]:
        """A chat model's next turn after `messages` ({role, content} dicts), piece by piece (`genlab chat`)."""
        raise GenlabError(f"{self.path} is a '{self.task}' run, not a chat model (train one with `task: chat`)")

    @property
    def class_names(self) -> list[str]:
        """The labels of a conditional image run or a classifier, in label-id order ([] if unconditional)."""
        raise NotImplementedError

    def generate_images(self, requests: list[dict[str, Any]]) -> list[Any]:
        """Several `generate` calls (their keyword arguments) at once; a task may share one forward pass."""
        return [self.generate(**request) for request in requests]

    def generate_audio(self, requests: list[dict[str, Any]]) -> list[Any]:
        """Several `generate` calls (their keyword arguments) at once -> GeneratedAudio each."""
        return [self.generate(**request) for request in requests]

    def classify(self, texts: list[str]) -> list[Any]:
        """Each text's labels with their probabilities, likeliest first (LabelScores)."""
        raise NotImplementedError

    def export_graph(self, **options: Any) -> ExportGraph:
        """The network `export` writes as ONNX: tensors in, one tensor out (genlab.interop.onnx). Its keyword
        arguments (e.g. a flow's sampling steps) are `genlab export`'s options."""
        raise GenlabError(f"a '{self.task}' run has no ONNX export")

    def export(self, out: str | Path, **options: Any) -> dict[str, Any]:
        """Write the run's network to `out` (FILE.onnx), checked against PyTorch by onnxruntime, and its
        description to FILE.json (inputs, output, their meaning, the measured difference); returns it.
        `options` go to `export_graph`."""
        self.check_options("export_graph", options)
        return export_onnx(
            self.export_graph(**options),
            out,
            {"run": str(self.path), "task": self.task, "checkpoint": self.checkpoint, "options": options},
        )

    def evaluate_protocol(self, name: str, **options: Any) -> dict[str, Any]:
        """Score the run by an evaluation protocol (genlab.evaluation.protocols) that fits its endpoint;
        writes report.json section `name` and returns the same dict."""
        protocol = get_protocol(name)
        if self.endpoint not in protocol.endpoints:
            raise GenlabError(
                f"protocol '{name}' scores {' or '.join(protocol.endpoints)} runs; this '{self.task}' "
                f"run serves {self.endpoint or 'nothing'}"
            )
        accepted = list(inspect.signature(protocol.score).parameters)[1:]  # after the handle
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise GenlabError(
                f"protocol '{name}' does not take {', '.join(unknown)} (it takes: {', '.join(accepted) or 'nothing'})"
            )
        meter = CostMeter()
        metrics = protocol.score(self, **options)
        metrics["eval_seconds"] = meter.snapshot()["wall_seconds"]
        self.run.update_report(name, metrics)
        return metrics

    def options(self, method: str) -> list[str]:
        """The keyword arguments this task's `method` ("generate" or "evaluate") takes."""
        return list(inspect.signature(getattr(self, method)).parameters)

    def check_options(self, method: str, options: dict[str, Any]) -> None:
        """Refuse options this task's `method` does not take, in one line naming the ones it does."""
        accepted = self.options(method)
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            command = method.removesuffix("_graph")  # export_graph's options are `genlab export`'s
            raise GenlabError(
                f"a '{self.task}' run does not take {', '.join(unknown)} for {command} "
                f"(it takes: {', '.join(accepted) or 'nothing'})"
            )

    def __repr__(self) -> str:
        return f"<genlab {self.task} run {self.path} ({self.checkpoint} checkpoint)>"


class ImageGeneratorRun(RunHandle):
    """A run that draws images of a data set's classes (gan, flow): `generate` returns GeneratedImages
    (saved as .png or .npy), the server's images endpoint serves it, `evaluate` scores it into "quality"."""

    eval_section = "quality"
    output_suffixes = IMAGE_SUFFIXES
    endpoint = "images"


@dataclass(frozen=True)
class TinyRun:
    """A run of a task that trains in seconds on data written to a folder: the contract test's case
    and every task's smoke mode."""

    recipe: str  # a shipped recipe name or a file
    overrides: list[str]  # key.sub=value, pointing the recipe at the tiny data
    generate: dict[str, Any]  # keyword arguments of RunHandle.generate
    cli_generate: list[str]  # the same, as `genlab generate RUN ...` arguments

    @classmethod
    def of(cls, recipe: str, settings: dict[str, Any], generate: dict[str, Any], out: Path | None = None) -> TinyRun:
        """The tiny run of `recipe` with `settings` (key.sub -> value; never a progress bar) and one `generate`
        call, whose CLI arguments are spelled from it (`--max-tokens 12` for max_tokens=12), then `--out out`
        for a task whose generate returns files."""
        overrides = [f"{key}={value}" for key, value in {**settings, "train.progress": False}.items()]
        cli = [word for key, value in generate.items() for word in (f"--{key.replace('_', '-')}", str(value))]
        return cls(recipe, overrides, generate, cli + (["--out", str(out)] if out else []))


def tiny_digits(folder: Path, train: int) -> dict[str, Any]:
    """The settings every tiny run on bundled MNIST digits shares: `train` training digits and 100 test
    digits written into `folder`, 64 to a batch, two epochs."""
    data = write_mnist_subset(folder / "tiny-mnist", train=train, test=100)
    return {"data.path": data, "data.batch_size": 64, "train.epochs": 2}


@dataclass(frozen=True)
class Task:
    recipe_type: type  # the recipe dataclass (core.recipe.recipe_type); its `task` field's default names the task
    training: Callable[[Any, DistEnv, RunDir], Training]  # builds the trainer's object from a recipe
    open: type[RunHandle]  # the handle class: open(run, recipe, "last" | "best"); its generate/evaluate
    #                        keyword arguments become the CLI's options
    tiny: Callable[[Path], TinyRun]  # writes tiny data into a folder; returns the run to make there
    compare_row: Callable[[RunDir, Any], dict[str, Any]]  # (run, its recipe) -> its `genlab report` row, read
    #                                                       from report.json (evaluation.compare.row)
    upgrade: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda tree: tree)  # old config keys
    # recipe keys naming a file or folder: a relative one is looked up in the current directory, then beside
    # the user's recipe file (genlab.core.recipe.resolve_relative_paths)
    path_keys: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The task's name, as a recipe's `task:` key gives it."""
        return self.recipe_type.task

    def recipe(self, tree: dict[str, Any]) -> Any:
        """The typed recipe for a nested dict (a recipe file, or a run's config.yaml)."""
        return from_dict(self.recipe_type, self.upgrade(tree))
