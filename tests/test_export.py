"""`genlab export`: what the contract test does not cover — every sequence length up to the context, the
modern transformer options, a graph that does not compute what PyTorch does, and bad --out values.
(tests/test_contract.py exports every task's tiny run and runs it in onnxruntime.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from genlab.cli import main
from genlab.errors import GenlabError
from genlab.interop.onnx import ExportGraph, export_onnx, token_logits_graph
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tasks import TASKS
from tests.conftest import one_error_line, snapshot, tiny_overrides

MODERN = dict(
    positions="rotary",
    norm="rmsnorm",
    activation="swiglu",
    qk_norm=True,
    bias=False,
    tie_head=False,
    logit_softcap=15.0,
)


@pytest.mark.parametrize("options", [{}, MODERN, {"causal": False}], ids=["gpt2", "modern", "bert"])
def test_a_transformer_reads_every_length_up_to_its_context(options, tmp_path):
    torch.manual_seed(0)
    model = Transformer(
        TransformerConfig(vocab_size=40, block_size=12, n_layer=2, n_head=2, n_embd=16, **options)
    ).eval()
    out = tmp_path / "lm.onnx"
    export_onnx(token_logits_graph(model, "ids"), out, {})
    session = onnxruntime.InferenceSession(str(out))
    for length in (1, 2, 12):
        ids = torch.randint(0, 40, (2, length))
        with torch.no_grad():
            want = model(ids).logits.numpy()
        got = session.run(None, {"input_ids": ids.numpy()})[0]
        assert got.shape == (2, length, 40) and np.abs(got - want).max() < 1e-4


class OffByOne:
    """An onnxruntime session whose answers are 1 off: a graph that does not compute what PyTorch computes."""

    def __init__(self, *args, **kwargs):
        self.session = REAL_SESSION(*args, **kwargs)

    def run(self, *args, **kwargs):
        return [out + 1 for out in self.session.run(*args, **kwargs)]


REAL_SESSION = onnxruntime.InferenceSession


def test_a_graph_that_differs_from_pytorch_is_not_written(tmp_path, monkeypatch):
    monkeypatch.setattr(onnxruntime, "InferenceSession", OffByOne)
    graph = ExportGraph(torch.nn.Linear(3, 2), lambda batch: {"x": torch.ones(batch, 3)}, "y")
    with pytest.raises(GenlabError, match="differs from the PyTorch model by 1"):
        export_onnx(graph, tmp_path / "linear.onnx", {})
    assert list(tmp_path.iterdir()) == []  # neither the graph nor a temporary file is left
    monkeypatch.undo()
    export_onnx(graph, tmp_path / "linear.onnx", {})  # the same graph, checked by the real runtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["linear.json", "linear.onnx"]


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory, tiny_idx_dir) -> Path:
    run = tmp_path_factory.mktemp("export") / "gan"
    assert main(["train", "conditional-mlp-mnist", *tiny_overrides(tiny_idx_dir), "--out", str(run)]) == 0
    return run


def test_the_description_names_inputs_output_and_the_check(gan_run, tmp_path, capsys):
    out = tmp_path / "gan.onnx"
    assert main(["export", str(gan_run), "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    described = json.loads(out.with_suffix(".json").read_text())
    assert described["inputs"]["z"]["shape"] == ["batch", 100] and described["inputs"]["labels"]["dtype"] == "int64"
    assert described["output"]["images"]["shape"] == ["batch", 1, 28, 28]
    assert "class ids 0..9" in described["inputs"]["labels"]["means"] and described["task"] == "gan"


@pytest.mark.parametrize(
    "out, expected",
    [
        (None, "pass --out FILE.onnx"),
        ("model.pt", "is written to FILE.onnx"),
        ("missing/model.onnx", "does not exist"),
    ],
)
def test_bad_out_is_one_line_and_writes_nothing(gan_run, tmp_path, capsys, out, expected):
    before = snapshot(gan_run)
    argv = ["export", str(gan_run)] + ([] if out is None else ["--out", str(tmp_path / out)])
    assert main(argv) == 2
    one_error_line(capsys, expected)
    assert list(tmp_path.iterdir()) == [] and snapshot(gan_run) == before


def test_options_reach_the_graph_and_a_task_without_them_refuses_them(gan_run, tmp_path, capsys):
    assert main(["export", str(gan_run), "--out", str(tmp_path / "gan.onnx"), "--steps", "2"]) == 2
    one_error_line(capsys, "a 'gan' run does not take steps for export (it takes: nothing)")
    flow = tmp_path / "flow"
    tiny = TASKS["flow"].tiny(tmp_path)
    assert main(["train", tiny.recipe, *tiny.overrides, "--out", str(flow)]) == 0
    out = tmp_path / "flow.onnx"
    assert main(["export", str(flow), "--out", str(out), "--steps", "2", "--guidance", "0"]) == 0
    described = json.loads(out.with_suffix(".json").read_text())
    assert described["options"] == {"steps": 2, "guidance": 0.0}
    assert "after 2 Euler steps at guidance w = 0 (2 U-Net evaluations" in described["output"]["images"]["means"]
