"""2-process torchrun (gloo) training gives the weights of 1 process with the same global batch."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from tests.conftest import tiny_overrides


def test_two_processes_match_one(tmp_path, tiny_idx_dir):
    overrides = tiny_overrides(tiny_idx_dir)
    base = ["-m", "genlab", "train", "essay-mlp-mnist", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENLAB_OFFLINE": "1"}
    single = subprocess.run([sys.executable, *base, "--out", str(tmp_path / "one")],
                            capture_output=True, text=True, env=env)
    assert single.returncode == 0, single.stderr
    double = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             *base, "--out", str(tmp_path / "two")], capture_output=True, text=True, env=env)
    assert double.returncode == 0, double.stderr[-2000:]
    for name in ("generator", "discriminator"):
        one = load_file(str(tmp_path / "one" / "checkpoints" / "last" / f"{name}.safetensors"))
        two = load_file(str(tmp_path / "two" / "checkpoints" / "last" / f"{name}.safetensors"))
        for key in one:
            # Same maths, different summation order: equal up to float rounding, not bit for bit.
            torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=f"{name}.{key}")
    for run in ("one", "two"):
        report = json.loads((tmp_path / run / "report.json").read_text())["cost"]
        assert report["steps"] == 8 and report["examples_seen"] == 8 * 64
    assert json.loads((tmp_path / "two" / "report.json").read_text())["cost"]["processes"] == 2
