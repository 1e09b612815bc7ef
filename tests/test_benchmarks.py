"""The benchmark scripts' tiny modes run end to end (the real runs are benchmarks, not tests)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genlab.data import load_image_dataset
from genlab.errors import GenlabError

ROOT = Path(__file__).resolve().parent.parent


def test_gan_benchmark_smoke(tmp_path):
    try:
        load_image_dataset("fashion-mnist")
    except GenlabError:
        pytest.skip("fashion-mnist is not installed (Debian dataset-fashion-mnist)")
    out = tmp_path / "gan.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gan_benchmark.py"), "--minutes", "0.05",
         "--throughput-steps", "5", "--rounds", "1", "--samples", "500", "--out", str(out)],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["throughput"]["speedup"] > 0
    assert results["quality"]["genlab_dcgan"]["num_samples"] == 500
    assert (tmp_path / "fashion_genlab_dcgan.png").is_file()


def test_lora_benchmark_tiny(tmp_path):
    pytest.importorskip("peft")
    pytest.importorskip("transformers")
    out = tmp_path / "lora.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "lora_benchmark.py"), "--tiny", "--out", str(out)],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["losses_match"] and results["warmup_loss_max_abs_diff"] <= 1e-4
    assert len(results["per_round"]) == 2
    assert results["median_ratio_peft_over_genlab"] > 0
    assert results["warmup_losses"]["genlab"][1] != results["warmup_losses"]["genlab"][0]  # the LoRA step trained
