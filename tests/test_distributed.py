"""2-process torchrun (gloo) training gives the weights of 1 process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import tiny_overrides


def train_one_and_two(tmp_path, args: list[str]) -> None:
    """`genlab train ARGS` in 1 process (RUN tmp_path/one) and in 2 torchrun processes (tmp_path/two)."""
    base = ["-m", "genlab", "train", *args]
    # One thread a process, as torchrun gives each (the suite's GENLAB_THREADS would override it).
    env = {
        **{k: v for k, v in os.environ.items() if k != "GENLAB_THREADS"},
        "OMP_NUM_THREADS": "1",
        "GENLAB_OFFLINE": "1",
    }
    single = subprocess.run(
        [sys.executable, *base, "--out", str(tmp_path / "one")], capture_output=True, text=True, env=env
    )
    assert single.returncode == 0, single.stderr
    double = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            *base,
            "--out",
            str(tmp_path / "two"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert double.returncode == 0, double.stderr[-2000:]
    assert json.loads((tmp_path / "two" / "report.json").read_text())["cost"]["processes"] == 2


def test_two_processes_match_one(tmp_path, tiny_idx_dir):
    train_one_and_two(tmp_path, ["essay-mlp-mnist", *tiny_overrides(tiny_idx_dir)])
    for name in ("generator", "discriminator"):
        one = load_file(str(tmp_path / "one" / "checkpoints" / "last" / f"{name}.safetensors"))
        two = load_file(str(tmp_path / "two" / "checkpoints" / "last" / f"{name}.safetensors"))
        for key in one:
            # Same maths, different summation order: equal up to float rounding, not bit for bit.
            torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=f"{name}.{key}")
    for run in ("one", "two"):
        report = json.loads((tmp_path / run / "report.json").read_text())["cost"]
        assert report["steps"] == 8 and report["examples_seen"] == 8 * 64 and report["periods"] == 2


def test_two_processes_match_one_for_a_language_model(tmp_path):
    rng = np.random.default_rng(0)
    words = "the light and darkness of waters under heaven was good in earth seed fruit".split()
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("".join(f"{i}: {' '.join(rng.choice(words, size=8))}.\n" for i in range(300)))
    settings = {
        "data.corpus": corpus,
        "data.block_size": 16,
        "data.batch_size": 4,
        "model.n_layer": 1,
        "model.n_head": 2,
        "model.n_embd": 16,
        "model.dropout": 0.0,
        "train.max_iters": 8,
        "train.eval_interval": 4,
        "train.warmup_iters": 2,
        "train.device": "cpu",
        "train.progress": False,
        "eval.eval_iters": 2,
    }
    train_one_and_two(tmp_path, ["char-gpt-kjv", *(f"{k}={v}" for k, v in settings.items())])
    one = load_file(str(tmp_path / "one" / "checkpoints" / "last" / "model.safetensors"))
    two = load_file(str(tmp_path / "two" / "checkpoints" / "last" / "model.safetensors"))
    # Same maths, different summation order. Here (8 steps) the weights differ by ~1e-6 at most; Adam divides
    # each update by the gradient's running RMS, so a rounding difference in a near-zero gradient can move a
    # weight by up to lr per step (the hand check on a bigger, longer run saw 1.7e-4). rtol 1e-4 + atol 1e-5
    # keeps a 10x margin over this run while still catching a rank reading the wrong slice or a missed all-reduce.
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=key)
    reports = [json.loads((tmp_path / run / "report.json").read_text()) for run in ("one", "two")]
    assert [r["cost"]["steps"] for r in reports] == [8, 8] and [r["cost"]["periods"] for r in reports] == [2, 2]
    assert [r["cost"]["processes"] for r in reports] == [1, 2]
    assert reports[1]["validation"]["loss"] == pytest.approx(reports[0]["validation"]["loss"], rel=1e-5)
