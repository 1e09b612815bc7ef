"""`genlab report`: table, plot and CLI from hand-written report.json files (2 tasks x 2 methods), plus bad runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from genlab.cli import main
from genlab.report import collect, plot, render_table


def write_run(root: Path, name: str, task: str, method: str, quality: float, *, init: str = "pretrained",
              trainable: int = 73738, total: int = 22786058, test: bool = True) -> Path:
    """A run folder with a report.json shaped like a fine-tuning run's."""
    run = root / name
    run.mkdir()
    report = {
        "finetune": {"task": task, "method": method, "start": "minilm", "init": init,
                     "trainable_parameters": trainable, "total_parameters": total,
                     "trainable_fraction": trainable / total},
        "cost": {"train_seconds": 10.0 + quality, "train_flops": 123456789000, "peak_rss_mb": 1534.2,
                 "wall_seconds": 200.0, "steps": 240, "epochs": 1.0},
    }
    if test and task == "modernize":
        report["test"] = {"metric": "bleu", "bleu": quality, "chrf": quality + 15, "signature": {}, "examples": 1550,
                          "baseline": {"name": "copy the source", "bleu": 47.0, "chrf": 68.0}}
    elif test:
        report["test"] = {"metric": "macro_f1", "macro_f1": quality, "accuracy": quality + 0.04, "examples": 430,
                          "baseline": {"name": "tf-idf + logistic regression", "macro_f1": 0.45}}
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


def one_error_line(capsys, expected: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("genlab: error:") and expected in err[0], err


def test_table_has_every_runs_numbers_sorted_by_task_and_method(runs):
    table = render_table(collect(runs))
    for text in ["macro-F1 0.512", "macro-F1 0.587", "BLEU 55.1, chrF 70.1", "BLEU 58.4, chrF 73.4",
                 "73.7 k (0.32 %)", "22.8 M (100.00 %)", "minilm (random init)", "0.450", "47.0", "1.23e+11"]:
        assert text in table, text
    body = table.splitlines()[2:]
    assert [line.split(" | ")[0].lstrip("| ") for line in body] == [
        "fortunes-full", "fortunes-lora", "modernize-full", "modernize-lora"]


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


@pytest.mark.parametrize("problem", ["missing folder", "no report.json", "bad json", "not a fine-tuning run"])
def test_bad_runs_exit_2_with_one_line(tmp_path, capsys, problem):
    run = tmp_path / "run"
    if problem != "missing folder":
        run.mkdir()
    if problem == "bad json":
        (run / "report.json").write_text("{not json")
    if problem == "not a fine-tuning run":
        (run / "report.json").write_text(json.dumps({"test": {"metric": "fid", "fid": 3.0}}))
    assert main(["report", str(run), "--out", str(tmp_path / "out")]) == 2
    one_error_line(capsys, str(run))
