"""The README's quick tour runs, every line in order (scripts/tour.py, seconds-sized runs): about 2 minutes on
2 cores, so it is marked `tour` (`pytest -m "not tour"` leaves it out)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genlab.data import load_image_dataset
from genlab.errors import GenlabError

ROOT = Path(__file__).resolve().parents[1]


def missing_system_data() -> str:
    """The Debian data the tour's recipes need beyond the bundled MNIST digits ('' when all is there)."""
    if shutil.which("espeak-ng") is None:
        return "espeak-ng is not installed (the spoken digits)"
    try:
        load_image_dataset("fashion-mnist")
    except GenlabError as exc:
        return str(exc)
    return ""


@pytest.mark.tour
def test_the_readme_tour_runs_line_by_line(tmp_path):
    if missing := missing_system_data():
        pytest.skip(missing)
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "tour.py"), "--dir", str(tmp_path)],
        env={**os.environ, "GENLAB_THREADS": "1"},  # a smoke run: one thread each, whatever else shares the cores
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert len(lines) >= 30 and "all" in done.stdout.splitlines()[-1]
    for made in ("runs/demo/report.json", "runs/modernize-full/report.json", "reports/report.md", "demo.onnx"):
        assert (tmp_path / made).is_file(), made
    assert (tmp_path / "sweeps" / "char-gpt-kjv-lm" / "report.md").is_file()
