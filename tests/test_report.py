"""`genlab report`: table, plot and CLI from hand-written fine-tuning runs (2 datasets x 2 methods), plus bad runs.
Every other task's row is checked on its tiny run in tests/test_contract.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from genlab.cli import main
from genlab.core.run import RunDir
from genlab.evaluation.compare import plot, render_table
from genlab.tasks import get_task
from genlab.tasks.finetune.report import compare_row
from tests.conftest import one_error_line


def write_run(
    root: Path,
    name: str,
    dataset: str,
    method: str,
    quality: float,
    *,
    init: str = "pretrained",
    trainable: int = 73738,
    total: int = 22786058,
    test: bool = True,
) -> Path:
    """A run folder with a config.yaml naming the finetune task and a report.json shaped like a fine-tuning run's."""
    run = root / name
    run.mkdir()
    (run / "config.yaml").write_text(f"name: {name}\ntask: finetune\n")
    report = {
        "finetune": {
            "dataset": dataset,
            "method": method,
            "start": "minilm",
            "init": init,
            "trainable_parameters": trainable,
            "total_parameters": total,
            "trainable_fraction": trainable / total,
        },
        "cost": {
            "train_seconds": 10.0 + quality,
            "train_flops": 123456789000,
            "peak_rss_mb": 1534.2,
            "wall_seconds": 200.0,
            "steps": 240,
            "periods": 1.0,
        },
    }
    if test and dataset == "modernize":
        report["test"] = {
            "metric": "bleu",
            "bleu": quality,
            "chrf": quality + 15,
            "signature": {},
            "examples": 1550,
            "baseline": {"name": "copy the source", "bleu": 47.0, "chrf": 68.0},
        }
    elif test:
        report["test"] = {
            "metric": "macro_f1",
            "macro_f1": quality,
            "accuracy": quality + 0.04,
            "examples": 430,
            "baseline": {"name": "tf-idf + logistic regression", "macro_f1": 0.45},
        }
    (run / "report.json").write_text(json.dumps(report))
    return run


@pytest.fixture
def runs(tmp_path) -> list[Path]:
    return [
        write_run(tmp_path, "fortunes-lora", "fortunes", "lora", 0.512),
        write_run(tmp_path, "fortunes-full", "fortunes", "full", 0.587, init="random", trainable=22786058),
        write_run(tmp_path, "modernize-lora", "modernize", "lora", 55.1),
        write_run(tmp_path, "modernize-full", "modernize", "full", 58.4, trainable=22786058),
    ]


def collect(runs: list[Path]) -> list[dict]:
    """One `genlab report` row per run, read the way the CLI reads them: through the task registry."""
    return [row_of(run) for run in runs]


def row_of(run: Path) -> dict:
    task = get_task("finetune")
    return task.compare_row(RunDir(run), task.recipe(RunDir(run).read_config()))


def test_the_finetune_task_offers_its_row_reader():
    assert get_task("finetune").compare_row is compare_row


def test_row_has_the_report_figures(runs):
    row = row_of(runs[2])
    assert {
        k: row[k]
        for k in (
            "run",
            "dataset",
            "method",
            "start",
            "init",
            "metric",
            "quality",
            "details",
            "baseline",
            "baseline_name",
            "trainable_parameters",
            "train_flops",
        )
    } == {
        "run": "modernize-lora",
        "dataset": "modernize",
        "method": "lora",
        "start": "minilm",
        "init": "pretrained",
        "metric": "bleu",
        "quality": 55.1,
        "details": "chrF 70.1",
        "baseline": 47.0,
        "baseline_name": "copy the source",
        "trainable_parameters": 73738,
        "train_flops": 123456789000,
    }
    assert "task" not in row


def test_a_dataset_file_is_shown_by_its_name_and_old_reports_still_read(tmp_path):
    run = write_run(tmp_path, "mine", "/data/sets/mine.jsonl", "lora", 0.7)
    assert row_of(run)["dataset"] == "mine.jsonl"
    report = json.loads((run / "report.json").read_text())
    report["finetune"]["task"] = report["finetune"].pop("dataset")  # reports before 0.2 called it "task"
    (run / "report.json").write_text(json.dumps(report))
    assert row_of(run)["dataset"] == "mine.jsonl"


def test_table_has_every_runs_numbers_sorted_by_dataset_and_method(runs):
    table = render_table(collect(runs))
    for text in [
        "macro-F1 0.512",
        "macro-F1 0.587",
        "BLEU 55.1, chrF 70.1",
        "BLEU 58.4, chrF 73.4",
        "73.7 k (0.32 %)",
        "22.8 M (100.00 %)",
        "minilm (random init)",
        "0.450",
        "47.0",
        "1.23e+11",
    ]:
        assert text in table, text
    body = table.splitlines()[2:]
    assert [line.split(" | ")[0].lstrip("| ") for line in body] == [
        "fortunes-full",
        "fortunes-lora",
        "modernize-full",
        "modernize-lora",
    ]


def test_missing_baseline_and_cost_show_a_dash(tmp_path):
    run = write_run(tmp_path, "translate", "modernize", "lora", 30.0)
    report = json.loads((run / "report.json").read_text())
    del report["test"]["baseline"], report["cost"]
    (run / "report.json").write_text(json.dumps(report))
    row = render_table(collect([run])).splitlines()[2]
    assert row.count("–") == 4, row  # baseline, train time, FLOPs, memory


def test_plot_writes_a_png(runs, tmp_path):
    path = plot(collect(runs), tmp_path / "plot.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.width > image.height  # two panels side by side


def test_cli_writes_table_and_plot(runs, tmp_path, capsys):
    out = tmp_path / "reports" / "nested"
    assert main(["report", *map(str, runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "macro-F1 0.512" in printed and str(out / "report.md") in printed
    markdown = (out / "report.md").read_text()
    assert "BLEU 58.4" in markdown and "genlab report" in markdown.splitlines()[-1]
    with Image.open(out / "quality_vs_cost.png") as image:
        assert image.format == "PNG"


def test_run_without_test_section_asks_for_eval(tmp_path, capsys):
    run = write_run(tmp_path, "unevaluated", "fortunes", "lora", 0.5, test=False)
    assert main(["report", str(run), "--out", str(tmp_path / "out")]) == 2
    one_error_line(capsys, f"genlab eval {run}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "problem, expected",
    [
        ("missing folder", "no such run folder"),
        ("no config.yaml", "not a genlab run directory"),
        ("no report.json", "no 'finetune' section"),
        ("bad json", "is not a valid run report"),
        ("gan run", "no quality results yet; run `genlab eval"),
        ("lm run", "no test results yet; run `genlab eval"),
    ],
)
def test_bad_runs_exit_2_with_one_line(tmp_path, capsys, problem, expected):
    run = tmp_path / "run"
    if problem != "missing folder":
        run.mkdir()
    if problem not in ("missing folder", "no config.yaml"):
        task = {"gan run": "gan", "lm run": "lm"}.get(problem, "finetune")
        (run / "config.yaml").write_text(f"name: run\ntask: {task}\n")
    if problem == "no config.yaml":
        (run / "report.json").write_text(json.dumps({"finetune": {"dataset": "fortunes"}}))
    if problem == "bad json":
        (run / "report.json").write_text("{not json")
    if problem in ("gan run", "lm run"):  # trained, never evaluated
        (run / "report.json").write_text(json.dumps({"cost": {"steps": 3}}))
    good = write_run(tmp_path, "good", "fortunes", "lora", 0.5)
    assert main(["report", str(good), str(run), "--out", str(tmp_path / "out")]) == 2
    one_error_line(capsys, str(run))
    assert main(["report", str(run), "--out", str(tmp_path / "out")]) == 2
    one_error_line(capsys, expected)
    assert not (tmp_path / "out").exists()  # every run is read before anything is written
