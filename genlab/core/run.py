"""The run directory and the cost ledger.

run/
  config.yaml        the resolved recipe (its `task:` says which task reads the run)
  checkpoints/last/  resumable state (safetensors weights + trainer state)
  checkpoints/best/  the same, from the period with the best quick score (e.g. lowest FID)
  samples/           a sample per period (image grid or text)
  events.*           TensorBoard scalars and images
  metrics.jsonl      one JSON object per logged step / period
  report.json        one section per producer: cost (the trainer), validation, quality or test (eval)
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any, Protocol

import torch
import yaml

from genlab.errors import GenlabError
from genlab.io.files import atomic_write_bytes, atomic_write_text, read_json
from genlab.io.images import make_grid, png_bytes


class MetricSink(Protocol):
    """Receives each row RunDir.log writes to metrics.jsonl (e.g. an MLflow or W&B tracker)."""

    def log(self, step: int, metrics: dict[str, float]) -> None: ...


class RunDir:
    """Paths and writers of one experiment's directory; TensorBoard only on the writing rank."""

    def __init__(self, path: str | Path, writer: bool = True):
        self.path = Path(path)
        self.is_writer = writer
        self._tensorboard = None
        self.sinks: list[MetricSink] = []  # more receivers of every logged row (genlab.core.tracking)

    # paths ---------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints" / "last"

    @property
    def best_checkpoint_dir(self) -> Path:
        return self.path / "checkpoints" / "best"

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    @property
    def report_path(self) -> Path:
        return self.path / "report.json"

    @property
    def claim_path(self) -> Path:
        """Marks a folder a new run is being made in, until its config.yaml exists (then it goes)."""
        return self.path / ".genlab-new-run"

    def exists(self) -> bool:
        return self.config_path.is_file()

    def check_new_place(self) -> None:
        """A new run goes where no folder is yet, into an empty folder, or into one an unfinished run left
        (killed before it came into being). A file, or a folder of other files, is refused and left untouched."""
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise GenlabError(f"{self.path} is a file, not a run folder: choose another --out")
        try:
            entries = sorted(p.name for p in self.path.iterdir())
        except OSError as exc:
            raise GenlabError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        if entries and not self.claim_path.is_file():
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise GenlabError(f"{self.path} holds other files ({shown}) and is not a genlab run: choose another --out")

    def claim(self) -> None:
        if self.is_writer:
            atomic_write_text(self.claim_path, "a genlab run is being made here; config.yaml marks it made\n")

    # writing --------------------------------------------------------------------------------
    def create(self, config: dict[str, Any]) -> None:
        if not self.is_writer:
            return
        try:
            self.samples_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GenlabError(f"cannot create run directory {self.path}: {exc.strerror or exc}") from None
        atomic_write_text(self.config_path, yaml.safe_dump(config, sort_keys=False))
        self.claim_path.unlink(missing_ok=True)

    def read_config(self) -> dict[str, Any]:
        """The resolved recipe as a nested dict; a missing or damaged config.yaml is one line."""
        if not self.exists():
            raise GenlabError(f"{self.path} is not a genlab run directory (no config.yaml)")
        try:
            tree = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise GenlabError(f"{self.config_path} cannot be read as a recipe ({str(exc).splitlines()[0]})") from None
        if not isinstance(tree, dict):
            raise GenlabError(f"{self.config_path} is not a recipe (a YAML mapping)")
        return tree

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.is_writer:
            return
        with open(self.path / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps({"step": step, **metrics}) + "\n")
        writer = self.tensorboard()
        for key, value in metrics.items():
            if isinstance(value, (int, float)):
                writer.add_scalar(key, value, step)
        for sink in self.sinks:
            sink.log(step, metrics)

    def log_image(self, tag: str, image_hwc, step: int) -> None:
        if self.is_writer:
            self.tensorboard().add_image(tag, image_hwc, step, dataformats="HWC")

    def save_sample_grid(self, images: torch.Tensor, nrow: int, period: int) -> None:
        """A period's samples (N, C, H, W) in [0, 1] as one grid, `nrow` to a row: samples/epoch_NNNN.png
        and the TensorBoard image "samples"."""
        if not self.is_writer:
            return
        grid = make_grid(images, nrow=nrow)  # (rows * (H + 2) + 2, nrow * (W + 2) + 2[, 3]) uint8
        atomic_write_bytes(self.samples_dir / f"epoch_{period:04d}.png", png_bytes(grid))
        self.log_image("samples", grid[:, :, None] if grid.ndim == 2 else grid, period)

    def tensorboard(self):
        if self._tensorboard is None:
            from torch.utils.tensorboard import SummaryWriter  # imports TensorBoard: only when logging

            self._tensorboard = SummaryWriter(str(self.path))
        return self._tensorboard

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None

    def read_report(self) -> dict[str, Any]:
        if not self.report_path.is_file():
            return {}
        report = read_json(self.report_path, "run report")
        if not isinstance(report, dict):
            raise GenlabError(f"{self.report_path} is not a run report (a JSON object)")
        return report

    def update_report(self, section: str, values: dict[str, Any]) -> None:
        if not self.is_writer:
            return
        report = self.read_report()
        report[section] = values
        atomic_write_text(self.report_path, json.dumps(report, indent=2) + "\n")


class CostMeter:
    """Wall time, CPU time and peak memory of this process since the meter was made."""

    def __init__(self) -> None:
        self.wall_start = time.perf_counter()
        self.cpu_start = time.process_time()

    def snapshot(self, device: str = "cpu") -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        ledger = {
            "wall_seconds": round(time.perf_counter() - self.wall_start, 3),
            "cpu_seconds": round(time.process_time() - self.cpu_start, 3),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # ru_maxrss is in KiB on Linux
        }
        if device == "cuda" and torch.cuda.is_available():
            ledger["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        return ledger
