"""ONNX export of a run's network (`genlab export`), checked against PyTorch with onnxruntime.

A task describes what to export as an `ExportGraph` — one module, named tensors in, one tensor out, and
how to make example inputs of any batch size. `export_onnx` traces it with torch.onnx's exporter
(torch.export underneath), with the batch (and any axis the task names, e.g. a sequence) dynamic, then
runs the written file in onnxruntime on inputs of another batch size and compares it with the module:
a file that does not compute what PyTorch computes is never left behind. Beside FILE.onnx it writes
FILE.json: the inputs and output with their shapes and meaning, the run, and the measured difference.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlab.errors import GenlabError, first_line
from genlab.io.files import atomic_write_text
from genlab.io.validate import output_file
from genlab.models.transformer import TokenLogits, Transformer

TOLERANCE = 1e-3  # largest |onnxruntime - PyTorch| accepted, in the output's own units
CHECK_BATCH = 3  # the parity check's batch: not the traced one, so the batch axis must really be dynamic


@dataclass(frozen=True)
class ExportGraph:
    """What `genlab export` writes: `module(*example(b).values())` -> one tensor."""

    module: torch.nn.Module
    example: Callable[[int], dict[str, torch.Tensor]]  # batch size -> named inputs, axis 0 the batch
    output: str  # the output's name
    dynamic: dict[str, dict[int, tuple[str, int]]] = field(default_factory=dict)  # input -> {axis: (name, max)}
    #                                                beyond the batch, e.g. {"input_ids": {1: ("sequence", 64)}}
    output_axes: dict[int, str] = field(default_factory=dict)  # the output's dynamic axes beyond the batch
    notes: dict[str, str] = field(default_factory=dict)  # what each input and the output mean, for FILE.json


def _shapes(graph: ExportGraph, inputs: dict[str, torch.Tensor]) -> tuple[dict[int, Any], ...]:
    """torch.export's dynamic shapes, in argument order: the batch everywhere, one Dim object per name."""
    dims: dict[str, Any] = {}

    def dim(name: str, limit: int | None) -> Any:
        return dims.setdefault(name, torch.export.Dim(name, max=limit) if limit else torch.export.Dim(name))

    return tuple(
        {
            0: dim("batch", None),
            **{axis: dim(name, limit) for axis, (name, limit) in graph.dynamic.get(key, {}).items()},
        }
        for key in inputs
    )


def _described(graph: ExportGraph, inputs: dict[str, torch.Tensor], output: torch.Tensor) -> dict[str, Any]:
    """Each input's and the output's shape (named axes where dynamic), dtype and meaning."""

    def spec(key: str, tensor: torch.Tensor, named: dict[int, str]) -> dict[str, Any]:
        named = {0: "batch", **named}
        return {
            "shape": [named.get(axis, size) for axis, size in enumerate(tensor.shape)],
            "dtype": str(tensor.dtype).removeprefix("torch."),
            "means": graph.notes.get(key),
        }

    dynamic = {key: {axis: name for axis, (name, _) in axes.items()} for key, axes in graph.dynamic.items()}
    return {
        "inputs": {key: spec(key, t, dynamic.get(key, {})) for key, t in inputs.items()},
        "output": {graph.output: spec(graph.output, output, graph.output_axes)},
    }


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """These loggers at ERROR for the duration (torch.onnx logs each pass it runs), warnings off."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation chatter is not the user's business
            for logger in loggers:
                logger.setLevel(logging.ERROR)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def export_onnx(graph: ExportGraph, path: str | Path, about: dict[str, Any]) -> dict[str, Any]:
    """Write `path` (.onnx) and its description `path` with .json; returns the description."""
    path = Path(path)
    if path.suffix != ".onnx":
        raise GenlabError(f"--out {path}: an ONNX export is written to FILE.onnx")
    path = output_file(path)  # a link's target, never a folder or a device
    output_file(path.with_suffix(".json"))  # its description goes beside it: checked before minutes of export
    try:
        import onnxruntime
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError:
        raise GenlabError("ONNX export needs onnx, onnxscript and onnxruntime: pip install 'genlab[export]'") from None
    module = graph.module.eval()
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        program = _trace(graph, module, tmp)
        check = graph.example(CHECK_BATCH)
        want, error = _compare(tmp, module, check, onnxruntime)
        os.replace(tmp, path)
    except GenlabError:
        raise
    except Exception as exc:  # the exporter's own failures: one line, not its traceback
        raise GenlabError(f"ONNX export failed: {type(exc).__name__}: {first_line(exc, 300)}") from None
    finally:
        tmp.unlink(missing_ok=True)
    description = {
        **about,
        **_described(graph, check, want),
        "opset": program.model.opset_imports.get("", None),
        "check": {
            "runtime": f"onnxruntime {onnxruntime.__version__}",
            "batch": CHECK_BATCH,
            "max_abs_difference": error,
        },
        "bytes": path.stat().st_size,
    }
    atomic_write_text(path.with_suffix(".json"), json.dumps(description, indent=2) + "\n")
    return description


def _trace(graph: ExportGraph, module: torch.nn.Module, tmp: Path) -> Any:
    """Export `module` traced at batch 2 (dynamic batch and the graph's dynamic axes) into `tmp`."""
    traced = graph.example(2)
    with _quiet("torch.onnx", "torch.export", "torch._dynamo", "onnx_ir", "onnxscript"):
        program = torch.onnx.export(
            module,
            tuple(traced.values()),
            input_names=list(traced),
            output_names=[graph.output],
            dynamic_shapes=_shapes(graph, traced),
            dynamo=True,
            verbose=False,
            optimize=True,
        )
        program.save(str(tmp))
    return program


def _compare(
    tmp: Path, module: torch.nn.Module, check: dict[str, torch.Tensor], onnxruntime: Any
) -> tuple[torch.Tensor, float]:
    """Run the written graph in onnxruntime at a batch the trace never saw: (PyTorch's output, max |difference|);
    refuses a graph that differs by more than TOLERANCE."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its graph-optimisation notes are not the user's business
    session = onnxruntime.InferenceSession(str(tmp), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {key: t.numpy() for key, t in check.items()})[0]
    with torch.no_grad():
        want = module(*check.values())
    error = float(np.abs(got - want.numpy()).max())
    if not error <= TOLERANCE:  # NaN too
        raise GenlabError(
            f"the exported graph differs from the PyTorch model by {error:.2g} (> {TOLERANCE}): not written"
        )
    return want, error


def token_logits_graph(model: Transformer, ids_mean: str) -> ExportGraph:
    """A transformer's graph: input_ids (batch, sequence <= its context) -> logits (batch, sequence, vocabulary)."""
    cfg = model.config

    def example(batch: int) -> dict[str, torch.Tensor]:  # another length per batch size: the axis must be dynamic
        ids = torch.randint(
            0, cfg.vocab_size, (batch, min(cfg.block_size, 4 + batch)), generator=torch.Generator().manual_seed(batch)
        )
        return {"input_ids": ids}

    what = "next-token" if cfg.causal else "masked-token"
    return ExportGraph(
        TokenLogits(model),
        example,
        "logits",
        dynamic={"input_ids": {1: ("sequence", cfg.block_size)}},
        output_axes={1: "sequence"},
        notes={
            "input_ids": ids_mean,
            "logits": f"{what} scores over the {cfg.vocab_size} tokens "
            "(softmax for probabilities)" + ("; position i sees tokens 0..i" if cfg.causal else ""),
        },
    )


def generator_graph(
    generator: torch.nn.Module, latent_dim: int, class_names: list[str], output: str, output_means: str
) -> ExportGraph:
    """A generator's graph: noise z (batch, latent) [and labels (batch,) if `class_names`] -> `output`."""

    def example(batch: int) -> dict[str, torch.Tensor]:
        inputs = {"z": torch.randn(batch, latent_dim, generator=torch.Generator().manual_seed(batch))}
        if class_names:
            inputs["labels"] = torch.arange(batch) % len(class_names)
        return inputs

    notes = {"z": "noise from a standard normal", output: output_means}
    if class_names:
        notes["labels"] = f"class ids 0..{len(class_names) - 1}: {', '.join(class_names)}"
    return ExportGraph(generator, example, output, notes=notes)
