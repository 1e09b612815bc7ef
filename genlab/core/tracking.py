"""Experiment tracking beyond TensorBoard: MLflow and Weights & Biases, both off unless a recipe asks.

A recipe's `tracking:` section turns them on (`tracking.mlflow=default`, `tracking.wandb=offline`). The
trackers then receive what the run directory receives: the flattened recipe as params, every row of
metrics.jsonl (buffered, sent in batches), and at the end report.json (its scalars as metrics/summary, the
file as an artifact) with the cost ledger. Their ids are kept in RUN/tracking.json, so `--resume` continues
the same MLflow run and W&B run. mlflow and wandb are imported only when a tracker opens: both take a second
or more to import, and most runs use neither.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from genlab.core.run import RunDir
from genlab.errors import GenlabError, first_line
from genlab.io.files import atomic_write_text, read_json
from genlab.version import __version__

# Stores MLflow can open: its SQLAlchemy databases, a local folder (file:), or a tracking server.
MLFLOW_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "file", "http", "https", "databricks")
WANDB_MODES = ("offline", "online")
FLUSH_EVERY = 50  # metric rows buffered before a batch is sent (a period's end also flushes)


@dataclass
class TrackingConfig:
    """Where a run is tracked besides TensorBoard; empty = not tracked there."""

    mlflow: str | bool = ""  # a tracking URI (sqlite:///mlflow.db, http://host:5000), or default / true
    mlflow_experiment: str = ""  # default: the recipe's name
    wandb: str | bool = ""  # offline | online
    wandb_project: str = "genlab"

    def __post_init__(self) -> None:
        # YAML reads `true`/`false` (and `on`/`off`) as booleans: true means the default store, false off.
        self.mlflow = "default" if self.mlflow is True else (self.mlflow or "")
        if self.mlflow not in ("", "default"):
            scheme = urlparse(self.mlflow).scheme
            if scheme not in MLFLOW_SCHEMES:
                raise ValueError(
                    f"tracking.mlflow must be default or a tracking URI ({', '.join(MLFLOW_SCHEMES)}),"
                    f" got {self.mlflow!r}"
                )
        if self.wandb is False:
            self.wandb = ""
        if self.wandb not in ("", *WANDB_MODES):
            raise ValueError(f"tracking.wandb must be offline or online, got {self.wandb!r}")
        if not self.wandb_project:
            raise ValueError("tracking.wandb_project must not be empty")


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"epochs": 3}} -> {"train.epochs": 3}: the names recipe overrides use."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def scalars(values: dict[str, Any]) -> dict[str, float]:
    """The numbers among `values` (booleans and text are not metrics)."""
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class _MLflow:
    """One MLflow run, through MlflowClient (no global `mlflow.start_run` state: a sweep trains many runs
    in one process)."""

    name = "mlflow"

    def __init__(
        self, uri: str, experiment: str, run: RunDir, task: str, params: dict[str, Any], saved: dict[str, Any]
    ) -> None:
        from mlflow.tracking import MlflowClient  # heavy: imported only when tracking to MLflow

        for name in ("alembic", "mlflow.store.db.utils"):  # a new SQLite store's table set-up is no news
            logging.getLogger(name).setLevel(logging.WARNING)

        self.client = MlflowClient(uri)
        self.uri = uri
        continued = saved.get("uri") == uri and self._exists(saved.get("run_id"))
        if continued:
            self.run_id = saved["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            tags = {
                "genlab.task": task,
                "genlab.version": __version__,
                "genlab.run_path": str(run.path.absolute()),
            }
            self.run_id = self.client.create_run(
                self._experiment_id(experiment), run_name=run.path.name, tags=tags
            ).info.run_id
        self._log_params(params, continued)

    def _exists(self, run_id: str | None) -> bool:
        if not run_id:
            return False
        try:
            return self.client.get_run(run_id).info.lifecycle_stage == "active"
        except Exception:  # deleted from the store, or another store: start a new run
            return False

    def _experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = None
        if self.uri.startswith("sqlite:///"):
            # MLflow's default artifact root is ./mlruns of the current folder: keep artifacts by the store.
            location = (Path(self.uri[len("sqlite:///") :]).parent / "mlartifacts").absolute().as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except Exception:  # another run of the sweep created it first
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def _log_params(self, params: dict[str, Any], continued: bool) -> None:
        from mlflow.entities import Param, RunTag

        values = {k: str(v) for k, v in params.items()}
        tags = []
        if continued:
            # MLflow params are write-once: a resumed run's changed keys (train.epochs=6) become tags.
            old = self.client.get_run(self.run_id).data.params
            tags = [RunTag(f"resumed.{k}", v) for k, v in values.items() if k in old and old[k] != v]
            values = {k: v for k, v in values.items() if k not in old}
        items = [Param(k, v) for k, v in values.items()]
        for i in range(0, max(len(items), len(tags)), 100):  # log_batch takes 100 params at most
            self.client.log_batch(self.run_id, params=items[i : i + 100], tags=tags[i : i + 100])

    def log_rows(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        from mlflow.entities import Metric

        now = _millis()
        metrics = [Metric(k, v, now, step) for step, values in rows for k, v in values.items()]
        for i in range(0, len(metrics), 1000):  # log_batch takes 1000 metrics at most
            self.client.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    def log_report(self, report_path: Path, values: dict[str, float], step: int) -> None:
        self.log_rows([(step, values)])
        self.client.log_artifact(self.run_id, str(report_path))

    def finish(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status=status)

    def ids(self) -> dict[str, Any]:
        return {"uri": self.uri, "run_id": self.run_id}


class _WandB:
    """One W&B run; offline writes RUN/wandb/offline-run-*/ (`wandb sync` uploads it later)."""

    name = "wandb"

    def __init__(
        self, mode: str, project: str, run: RunDir, task: str, params: dict[str, Any], saved: dict[str, Any]
    ) -> None:
        import wandb  # heavy: imported only when tracking to W&B

        self.wandb = wandb
        self.run_path = run.path
        settings = wandb.Settings(console="off", x_disable_stats=True, save_code=False, silent=True)
        self.run = wandb.init(
            project=project,
            dir=str(run.path),
            mode=mode,
            id=saved.get("id"),
            resume="allow",
            name=run.path.name,
            tags=[task, f"genlab-{__version__}"],
            settings=settings,
            config={**params, "genlab.run_path": str(run.path.absolute())},
            reinit="create_new",
        )  # a sweep trains one run after another in one process

    def log_rows(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        for step, values in rows:
            self.run.log(values, step=step)

    def log_report(self, report_path: Path, values: dict[str, float], step: int) -> None:
        self.run.summary.update(values)
        self.run.save(str(report_path), base_path=str(report_path.parent), policy="now")

    def finish(self, status: str) -> None:
        self.run.finish(exit_code=0 if status == "FINISHED" else 1)

    def ids(self) -> dict[str, Any]:
        return {"id": self.run.id, "project": self.run.project}


def _millis() -> int:
    return int(time.time() * 1000)


class Trackers:
    """The run's trackers, as one sink of RunDir.log. A tracker that fails mid-run warns once and is dropped:
    losing a dashboard must not lose the training."""

    def __init__(self, run: RunDir | None = None, backends: list[Any] = ()) -> None:
        self.run = run
        self.backends = list(backends)
        self.buffer: list[tuple[int, dict[str, float]]] = []
        self.last_step = 0

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if not self.backends:
            return
        self.buffer.append((step, scalars(metrics)))
        self.last_step = step
        # The trainer's row at a period's end carries `period`: flush there, so dashboards follow each period.
        if len(self.buffer) >= FLUSH_EVERY or "period" in metrics:
            self.flush()

    def flush(self) -> None:
        rows, self.buffer = self.buffer, []
        if rows:
            self._each("log_rows", rows)

    def finish(self, status: str = "FINISHED") -> None:
        """Send what is buffered, the report's scalars and file (cost ledger included) and end the runs;
        status is FINISHED, KILLED (Ctrl-C) or FAILED."""
        if not self.backends:
            return
        self.flush()
        if self.run is not None and self.run.report_path.is_file():
            try:
                values = scalars(flatten(self.run.read_report()))
            except GenlabError:
                values = {}
            self._each("log_report", self.run.report_path, values, self.last_step)
        self._each("finish", status)
        self.backends = []

    def _each(self, method: str, *args: Any) -> None:
        for backend in list(self.backends):
            try:
                getattr(backend, method)(*args)
            except Exception as exc:  # a full disk, a lost server: warn once, keep training
                self.backends.remove(backend)
                warnings.warn(
                    f"{backend.name} tracking stopped ({first_line(exc)}); training goes on without it", stacklevel=2
                )


def resolve_mlflow_uri(value: str, run: RunDir) -> str:
    """`default` is an SQLite file beside the run, shared by every run of the folder (a sweep's runs); a
    relative SQLite path is made absolute, so a resumed run finds its store from any working folder."""
    if value == "default":
        return f"sqlite:///{(run.path.absolute().parent / 'mlflow.db')}"
    if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
        return f"sqlite:///{Path(value[len('sqlite:///') :]).absolute()}"
    return value


def open_trackers(recipe: Any, run: RunDir, task: str) -> Trackers:
    """Open the trackers the recipe's `tracking:` section asks for (none on a non-writing rank), continuing
    the runs RUN/tracking.json names; a store that cannot be opened is one GenlabError, before training."""
    config = getattr(recipe, "tracking", None)  # a task whose recipe has no tracking section is not tracked
    if not run.is_writer or config is None or not (config.mlflow or config.wandb):
        return Trackers()
    ids_path = run.path / "tracking.json"
    saved = read_json(ids_path, "tracking ids") if ids_path.is_file() else {}
    saved = saved if isinstance(saved, dict) else {}
    params = flatten(asdict(recipe))
    backends: list[Any] = []
    try:
        if config.mlflow:
            uri = resolve_mlflow_uri(config.mlflow, run)
            try:
                backends.append(
                    _MLflow(uri, config.mlflow_experiment or recipe.name, run, task, params, saved.get("mlflow", {}))
                )
            except Exception as exc:
                raise GenlabError(f"tracking.mlflow: cannot open {uri} ({first_line(exc)})") from None
        if config.wandb:
            try:
                backends.append(_WandB(config.wandb, config.wandb_project, run, task, params, saved.get("wandb", {})))
            except Exception as exc:
                raise GenlabError(
                    f"tracking.wandb: cannot start a {config.wandb} W&B run ({first_line(exc)})"
                ) from None
    except GenlabError:
        Trackers(run, backends).finish("FAILED")
        raise
    ids = {**saved, **{b.name: b.ids() for b in backends}}  # a tracker turned off now keeps its ids
    atomic_write_text(ids_path, json.dumps(ids, indent=2) + "\n")
    return Trackers(run, backends)
