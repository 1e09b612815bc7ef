"""The contract every registered task keeps — today's and every later one — checked on each task's
tiny run (Task.tiny): it trains end to end through the CLI; the same seed gives the same weights;
Ctrl-C leaves a checkpoint from which a resumed run ends with the weights of an uninterrupted one;
`eval` writes the task's section of report.json, which `genlab report` reads; `generate` works through
the CLI and through `genlab.load` and both give the same output; `genlab serve` answers for it at its
endpoint; a damaged run directory is one line and exit 2.

Adding a task to genlab/tasks/__init__.py adds it here: this file is the checklist of
docs/adding-a-task.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from fastapi.testclient import TestClient

import genlab
from genlab.cli import main
from genlab.core.run import RunDir
from genlab.core.trainer import Interrupted
from genlab.serve import create_app
from genlab.tasks import TASKS, load_recipe
from genlab.tasks.launch import train_run
from tests.conftest import assert_same_weights, one_error_line, snapshot, weights

NAMES = list(TASKS)


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict:
    """Each task's tiny run, trained once through the CLI: name -> (TinyRun, run directory)."""
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_OFFLINE", "1")
        mp.setenv("GENLAB_DATA_DIR", str(tmp_path_factory.mktemp("data-cache")))
        for name, task in TASKS.items():
            folder = tmp_path_factory.mktemp(name)
            tiny = task.tiny(folder)
            run = folder / "run"
            assert main(["train", tiny.recipe, *tiny.overrides, "--out", str(run)]) == 0, name
            out[name] = (tiny, run)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_tiny_run_trains_end_to_end(cases, name):
    _, run = cases[name]
    report = json.loads((run / "report.json").read_text())
    assert report["cost"]["steps"] > 0 and report["cost"]["train_flops"] > 0
    assert report["cost"]["stopped_by"] == "periods"
    assert genlab.load(run).recipe.task == name
    assert (run / "checkpoints" / "last" / "meta.json").is_file() and any((run / "samples").iterdir())


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_weights_other_seed_differs(cases, name, tmp_path):
    tiny, run = cases[name]
    assert main(["train", tiny.recipe, *tiny.overrides, "--out", str(tmp_path / "again")]) == 0
    assert_same_weights(weights(run), weights(tmp_path / "again"))
    assert main(["train", tiny.recipe, *tiny.overrides, "seed=1", "--out", str(tmp_path / "other")]) == 0
    with pytest.raises(AssertionError):
        assert_same_weights(weights(run), weights(tmp_path / "other"))


@pytest.mark.parametrize("name", NAMES)
def test_ctrl_c_leaves_a_checkpoint_and_resume_equals_uninterrupted(cases, name, tmp_path, capsys):
    tiny, run = cases[name]
    task = TASKS[name]
    steps = json.loads((run / "report.json").read_text())["cost"]["steps"]
    cut_at = steps // 2 + 1  # Ctrl-C arrives in the middle of this step, inside a period

    def interrupted(recipe, env, run_dir):
        training = task.training(recipe, env, run_dir)
        real_step = training.train_step

        def step(indices, step):
            if step == cut_at:
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends; the step still finishes
            return real_step(indices, step)

        training.train_step = step
        return training

    recipe = load_recipe(tiny.recipe, tiny.overrides)
    with pytest.raises(Interrupted, match=f"interrupted at step {cut_at + 1}; resumable checkpoint saved"):
        train_run(dataclasses.replace(task, training=interrupted), recipe, tmp_path / "cut")
    assert not any(p.name.endswith((".tmp", ".old")) for p in (tmp_path / "cut" / "checkpoints").iterdir())
    assert main(["train", "--resume", str(tmp_path / "cut")]) == 0
    report = json.loads((tmp_path / "cut" / "report.json").read_text())
    assert report["cost"]["steps"] == steps and report["cost"]["steps_this_session"] == steps - cut_at - 1
    assert_same_weights(weights(run), weights(tmp_path / "cut"))


@pytest.mark.parametrize("name", NAMES)
def test_eval_writes_its_section_of_the_report_and_genlab_report_reads_it(cases, name, tmp_path, capsys):
    _, trained = cases[name]
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    assert main(["report", str(run), "--out", str(tmp_path / "cmp")]) == 2  # nothing to compare before eval
    one_error_line(capsys, f"run `genlab eval {run}` first")
    assert main(["eval", str(run)]) == 0
    report = json.loads((run / "report.json").read_text())
    section = report[TASKS[name].open.eval_section]
    assert "cost" in report and section["eval_seconds"] >= 0
    # the Python API writes the same section with the same figures (timing aside)
    metrics = genlab.load(run).evaluate()
    strip = lambda d: {k: v for k, v in d.items() if k != "eval_seconds"}  # noqa: E731
    assert strip(json.loads(json.dumps(metrics))) == strip(section)
    # `genlab report`'s row holds the section's headline figure and the run's cost
    row = TASKS[name].compare_row(RunDir(run), genlab.load(run).recipe)
    assert row["quality"] == section[row["metric"]] and row["train_flops"] == report["cost"]["train_flops"]
    capsys.readouterr()
    assert main(["report", str(run), "--out", str(tmp_path / "cmp")]) == 0
    assert f"| {run.name} | {row['dataset']} |" in (tmp_path / "cmp" / "report.md").read_text()


@pytest.mark.parametrize("name", NAMES)
def test_generate_through_the_cli_and_the_api_agree(cases, name, tmp_path, capsys):
    tiny, run = cases[name]
    handle = genlab.load(run)
    result = handle.generate(**tiny.generate)
    assert repr(handle.generate(**tiny.generate)) == repr(result)  # seeded: the same twice
    capsys.readouterr()
    assert main(["generate", str(run), *tiny.cli_generate]) == 0
    printed = capsys.readouterr().out
    if hasattr(result, "save"):  # files: the CLI's --out and the handle's save give the same bytes
        cli_out = Path(tiny.cli_generate[tiny.cli_generate.index("--out") + 1])
        api_out = result.save(tmp_path / f"api{cli_out.suffix}")
        assert cli_out.read_bytes() == api_out.read_bytes() and len(cli_out.read_bytes()) > 0
    else:  # text: the CLI prints what the handle returns (a language model after its prompt)
        prompt = tiny.generate.get("prompt", "") if "stream" in handle.options("generate") else ""
        assert printed == f"{prompt}{result}\n" and str(result).strip()


@pytest.mark.parametrize("name", NAMES)
def test_export_writes_onnx_that_onnxruntime_runs_as_pytorch_does(cases, name, tmp_path, capsys):
    _, run = cases[name]
    before = snapshot(run)
    out = tmp_path / "model.onnx"
    assert main(["export", str(run), "--out", str(out)]) == 0
    assert snapshot(run) == before  # the run is only read
    description = json.loads(out.with_suffix(".json").read_text())
    graph = genlab.load(run).export_graph()
    inputs = graph.example(5)  # a batch size neither the trace nor the export's own check used
    assert list(description["inputs"]) == list(inputs) and description["check"]["max_abs_difference"] <= 1e-3
    got = onnxruntime.InferenceSession(str(out)).run(None, {key: t.numpy() for key, t in inputs.items()})[0]
    with torch.no_grad():
        want = graph.module(*inputs.values()).numpy()
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-4
    assert description["output"][graph.output]["shape"][0] == "batch"


SERVE_REQUESTS = {  # one request per endpoint, built from the tiny run's own generate options
    "completions": lambda tiny: ("/v1/completions", {"prompt": tiny.generate["prompt"], "max_tokens": 8}),
    "images": lambda tiny: ("/v1/images/generations", {"n": 2}),
    "classifications": lambda tiny: ("/v1/classifications", {"input": tiny.generate["prompt"]}),
    "audio": lambda tiny: ("/v1/audio/generations", {"text": "4 0 7"}),
    "translations": lambda tiny: ("/v1/translations", {"input": tiny.generate["text"], "beam": 2}),
}


@pytest.mark.parametrize("name", NAMES)
def test_served_at_its_endpoint(cases, name):
    tiny, run = cases[name]
    handle = genlab.load(run)
    assert handle.endpoint in SERVE_REQUESTS, f"'{name}' runs name no endpoint genlab serve has"
    path, body = SERVE_REQUESTS[handle.endpoint](tiny)
    with TestClient(create_app({"run": handle})) as client:
        response = client.post(path, json={"model": "run", **body})
        assert response.status_code == 200, response.text
        assert response.json()["genlab"]["flops"] > 0
        assert client.get("/v1/models").json()["data"][0]["task"] == name


def damage_missing_checkpoint(run: Path, other: Path) -> None:
    shutil.rmtree(run / "checkpoints")


def damage_foreign_checkpoint(run: Path, other: Path) -> None:
    shutil.rmtree(run / "checkpoints" / "last")
    shutil.copytree(other / "checkpoints" / "last", run / "checkpoints" / "last")


def damage_truncated_weights(run: Path, other: Path) -> None:
    for f in (run / "checkpoints" / "last").glob("*.safetensors"):
        f.write_bytes(f.read_bytes()[:100])
    for f in run.glob("adapter/*.safetensors"):  # parameter-efficient runs load their delta instead
        f.write_bytes(f.read_bytes()[:100])


def damage_bad_config(run: Path, other: Path) -> None:
    (run / "config.yaml").write_text("task: [unclosed\n")


def damage_unknown_config_key(run: Path, other: Path) -> None:
    (run / "config.yaml").write_text((run / "config.yaml").read_text() + "surprise: 1\n")


def damage_corrupt_meta(run: Path, other: Path) -> None:
    (run / "checkpoints" / "last" / "meta.json").write_text("{not json")


DAMAGES = [
    damage_missing_checkpoint,
    damage_foreign_checkpoint,
    damage_truncated_weights,
    damage_bad_config,
    damage_unknown_config_key,
    damage_corrupt_meta,
]


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda f: f.__name__.removeprefix("damage_"))
@pytest.mark.parametrize("name", NAMES)
def test_a_damaged_run_directory_is_one_line_and_exit_2(cases, name, damage, tmp_path, capsys):
    tiny, trained = cases[name]
    other_name = NAMES[(NAMES.index(name) + 1) % len(NAMES)]
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    damage(run, cases[other_name][1])
    before = snapshot(run)
    for argv in (["generate", str(run), *tiny.cli_generate], ["eval", str(run)]):
        assert main(argv) == 2, argv
        one_error_line(capsys)
    assert snapshot(run) == before  # nothing written, removed or changed
