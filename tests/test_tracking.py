"""MLflow and W&B tracking on tiny GAN runs: what each store holds read back with the tracker's own reader,
resume continuing the same tracked run, bad settings as one line, a tracker failing mid-run, and no
mlflow/wandb import when tracking is off. Never touches the network (W&B runs offline)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import genlab
from genlab import cli
from genlab.core import tracking
from genlab.core.tracking import Trackers, TrackingConfig
from genlab.core.trainer import Interrupted
from genlab.tasks import TASKS
from tests.conftest import one_error_line


@pytest.fixture
def tiny(tmp_path):
    return TASKS["gan"].tiny(tmp_path / "data")


@pytest.fixture(autouse=True)
def wandb_offline(tmp_path, monkeypatch):
    """W&B offline and silent, its config and cache in the test's folder, never the user's."""
    for key, value in {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": tmp_path / "wandb-dir",
        "WANDB_CONFIG_DIR": tmp_path / "wandb-config",
        "WANDB_CACHE_DIR": tmp_path / "wandb-cache",
        "WANDB_DATA_DIR": tmp_path / "wandb-data",
    }.items():
        monkeypatch.setenv(key, str(value))


def jsonl(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_mlflow_round_trip_and_resume(tmp_path, tiny):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    run = tmp_path / "run"
    genlab.fit(tiny.recipe, run, tiny.overrides + [f"tracking.mlflow={uri}", "tracking.mlflow_experiment=tiny"])
    client = MlflowClient(uri)
    run_id = json.loads((run / "tracking.json").read_text())["mlflow"]["run_id"]
    tracked = client.get_run(run_id)
    assert tracked.info.status == "FINISHED" and tracked.info.run_name == "run"
    assert client.get_experiment(tracked.info.experiment_id).name == "tiny"
    params = tracked.data.params
    assert params["train.epochs"] == "2" and params["data.batch_size"] == "64" and params["tracking.mlflow"] == uri
    assert tracked.data.tags["genlab.task"] == "gan" and tracked.data.tags["genlab.version"] == genlab.__version__
    assert tracked.data.tags["genlab.run_path"] == str(run.absolute())

    rows = jsonl(run)
    for key in {k for row in rows for k in row} - {"step"}:  # every row of metrics.jsonl, value for value
        history = {m.step: m.value for m in client.get_metric_history(run_id, key)}
        assert history == {row["step"]: pytest.approx(row[key]) for row in rows if key in row}, key
    report = json.loads((run / "report.json").read_text())
    metrics = tracked.data.metrics
    assert metrics["cost.train_flops"] == report["cost"]["train_flops"]
    assert metrics["cost.train_seconds"] == pytest.approx(report["cost"]["train_seconds"])
    assert metrics["cost.parameters.generator"] == report["cost"]["parameters"]["generator"]
    artifact = Path(client.download_artifacts(run_id, "report.json", str(tmp_path / "download")))
    assert json.loads(artifact.read_text()) == report
    assert (tmp_path / "store" / "mlartifacts").is_dir()  # by the store, not in the working folder

    genlab.fit(run, overrides=["train.epochs=3"], resume=True)
    resumed = client.get_run(run_id)  # the same MLflow run, continued
    assert json.loads((run / "tracking.json").read_text())["mlflow"]["run_id"] == run_id
    assert resumed.info.status == "FINISHED" and len(client.search_runs([tracked.info.experiment_id])) == 1
    assert resumed.data.params["train.epochs"] == "2" and resumed.data.tags["resumed.train.epochs"] == "3"
    history = {m.step: m.value for m in client.get_metric_history(run_id, "loss/d")}
    assert sorted(history) == [row["step"] for row in jsonl(run)] == [4, 8, 12]
    assert resumed.data.metrics["cost.sessions"] == 2


def test_default_mlflow_store_is_shared_by_the_runs_of_a_folder(tmp_path, tiny):
    from mlflow.tracking import MlflowClient

    for name in ("a", "b"):
        genlab.fit(tiny.recipe, tmp_path / "sweep" / name, tiny.overrides + ["tracking.mlflow=true", "train.epochs=1"])
    client = MlflowClient(f"sqlite:///{tmp_path / 'sweep' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("essay-mlp-mnist")  # the recipe's name
    assert sorted(r.info.run_name for r in client.search_runs([experiment.experiment_id])) == ["a", "b"]


def wandb_records(run_folder: Path) -> list:
    """The records of a W&B offline run's .wandb file, read with wandb's own protobuf schema. The file is a
    LevelDB-style log (wandb-core writes it; 0.31 ships no Python reader): a 7-byte W&B header, then 32 KiB
    blocks of chunks, each with a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto.wandb_internal_pb2 import Record

    (path,) = run_folder.glob("*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pos, pending = [], 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def test_wandb_offline_round_trip(tmp_path, tiny):
    run = tmp_path / "run"
    genlab.fit(tiny.recipe, run, tiny.overrides + ["tracking.wandb=offline"])
    wandb_id = json.loads((run / "tracking.json").read_text())["wandb"]["id"]
    (folder,) = (run / "wandb").glob(f"offline-run-*-{wandb_id}")
    records = wandb_records(folder)
    kinds = [r.WhichOneof("record_type") for r in records]
    (started,) = [r.run for r, k in zip(records, kinds) if k == "run"]
    assert started.project == "genlab" and list(started.tags)[0] == "gan"
    config = {u.key: json.loads(u.value_json) for u in started.config.update}
    assert config["train.epochs"] == 2 and config["data.batch_size"] == 64 and config["tracking.wandb"] == "offline"

    history = {}
    for record, kind in zip(records, kinds):
        if kind == "history":
            items = {"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in record.history.item}
            history[items["_step"]] = items
    rows = jsonl(run)
    assert sorted(history) == [row["step"] for row in rows]
    for row in rows:
        values = {k: v for k, v in row.items() if k != "step"}
        assert {k: history[row["step"]][k] for k in values} == pytest.approx(values)
    summary = {}
    for record, kind in zip(records, kinds):
        if kind == "summary":
            summary.update({"/".join(u.nested_key) or u.key: json.loads(u.value_json) for u in record.summary.update})
    report = json.loads((run / "report.json").read_text())
    assert summary["cost.train_flops"] == report["cost"]["train_flops"]
    assert json.loads((folder / "files" / "report.json").read_text()) == report
    assert [r.exit.exit_code for r, k in zip(records, kinds) if k == "exit"] == [0]

    genlab.fit(run, overrides=["train.epochs=3"], resume=True)  # the same W&B run id, continued
    assert json.loads((run / "tracking.json").read_text())["wandb"]["id"] == wandb_id
    assert len(list((run / "wandb").glob(f"offline-run-*-{wandb_id}"))) == 2  # `wandb sync` joins them


@pytest.mark.parametrize(
    "override, expected",
    [
        ("tracking.wandb=maybe", "tracking.wandb must be offline or online, got 'maybe'"),
        ("tracking.wandb=true", "tracking.wandb must be offline or online"),
        ("tracking.mlflow=ftp://example.com/store", "tracking.mlflow must be default or a tracking URI"),
        ("tracking.mlflow=sqlite:///{tmp}/a-file/mlflow.db", "tracking.mlflow: cannot open"),
    ],
)
def test_bad_tracking_settings_are_one_line(tmp_path, tiny, capsys, override, expected):
    (tmp_path / "a-file").write_text("not a folder")
    override = override.format(tmp=tmp_path)
    out = tmp_path / "run"
    assert cli.main(["train", tiny.recipe, "--out", str(out), *tiny.overrides, override]) == 2
    one_error_line(capsys, expected)
    assert not out.exists()  # refused before the run came into being


def test_true_means_the_default_store_and_false_means_off():
    assert TrackingConfig(mlflow=True).mlflow == "default"
    assert TrackingConfig(mlflow=False, wandb=False) == TrackingConfig()


class Broken:
    name = "mlflow"

    def __init__(self):
        self.calls = 0

    def log_rows(self, rows):
        self.calls += 1
        raise OSError("[Errno 28] No space left on device")


def test_a_tracker_failing_mid_run_warns_once_and_is_dropped():
    broken = Broken()
    trackers = Trackers(None, [broken])
    with pytest.warns(UserWarning, match="mlflow tracking stopped .*No space left on device.*training goes on"):
        for step in range(1, 4):
            trackers.log(step, {"loss": 1.0, "period": step})
    assert broken.calls == 1 and trackers.backends == []
    trackers.finish()


def test_training_goes_on_when_the_store_fails_mid_run(tmp_path, tiny, monkeypatch):
    def full_disk(self, rows):
        raise OSError("[Errno 28] No space left on device")

    monkeypatch.setattr(tracking._MLflow, "log_rows", full_disk)
    with pytest.warns(UserWarning, match="mlflow tracking stopped") as caught:
        _, report = genlab.fit(tiny.recipe, tmp_path / "run", tiny.overrides + ["tracking.mlflow=default"])
    assert report["cost"]["steps"] == 8 and len([w for w in caught if "tracking" in str(w.message)]) == 1


def test_tracking_off_imports_neither_mlflow_nor_wandb(tmp_path, tiny):
    code = (
        "import sys, genlab; "
        f"genlab.fit({tiny.recipe!r}, {str(tmp_path / 'run')!r}, {tiny.overrides!r}); "
        "print(sorted(m for m in ('mlflow', 'wandb') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_ctrl_c_ends_the_tracked_run_as_killed_and_resume_continues_it(tmp_path, tiny):
    from mlflow.tracking import MlflowClient

    def ctrl_c(step, metrics):
        raise KeyboardInterrupt  # as a second Ctrl-C would, between two periods

    run = tmp_path / "run"
    with pytest.raises(Interrupted):
        genlab.fit(tiny.recipe, run, tiny.overrides + ["tracking.mlflow=default"], on_period=ctrl_c)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = json.loads((run / "tracking.json").read_text())["mlflow"]["run_id"]
    assert client.get_run(run_id).info.status == "KILLED"
    genlab.fit(run, resume=True)
    assert client.get_run(run_id).info.status == "FINISHED"
