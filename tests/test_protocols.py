"""`genlab eval RUN --protocol NAME`: the plumbing every evaluation protocol shares (genlab.evaluation.protocols),
checked with a protocol made up here; the real protocols have their own test files."""

from __future__ import annotations

import json
import shutil

import pytest

from genlab import load
from genlab.cli import main
from genlab.evaluation.protocols import PROTOCOLS, EvalProtocol
from tests.conftest import one_error_line, snapshot


def _count_labels(handle, repeat: int = 1) -> dict:
    return {"labels": len(handle.class_names) * repeat}


@pytest.fixture
def counting_protocol(monkeypatch):
    monkeypatch.setitem(
        PROTOCOLS, "count-labels", EvalProtocol("count-labels", ("classifications",), _count_labels, "how many labels")
    )


@pytest.fixture
def classifier_run(served_runs, tmp_path):
    return shutil.copytree(served_runs["finetune"], tmp_path / "classifier")


def test_a_protocol_scores_a_run_and_writes_its_section(counting_protocol, classifier_run, capsys):
    labels = len(load(classifier_run).class_names)
    assert main(["eval", str(classifier_run), "--protocol", "count-labels", "--repeat", "3"]) == 0
    section = json.loads((classifier_run / "report.json").read_text())["count-labels"]
    assert section["labels"] == 3 * labels and section["eval_seconds"] >= 0
    assert json.loads(capsys.readouterr().out.split("\nwritten to")[0])["labels"] == 3 * labels
    assert load(classifier_run).evaluate_protocol("count-labels")["labels"] == labels


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["--protocol", "no-such-protocol"], "unknown protocol 'no-such-protocol'"),
        (["--protocol", "count-labels", "--n", "3"], "does not take n"),
    ],
)
def test_bad_protocol_requests_are_one_line(counting_protocol, classifier_run, capsys, arguments, expected):
    before = snapshot(classifier_run)
    assert main(["eval", str(classifier_run), *arguments]) == 2
    one_error_line(capsys, expected)
    assert snapshot(classifier_run) == before


def test_a_protocol_refuses_a_run_of_another_endpoint(counting_protocol, served_runs, capsys):
    before = snapshot(served_runs["lm"])
    assert main(["eval", str(served_runs["lm"]), "--protocol", "count-labels"]) == 2
    one_error_line(capsys, "protocol 'count-labels' scores classifications runs")
    assert snapshot(served_runs["lm"]) == before


def test_protocol_options_are_refused_without_a_protocol(counting_protocol, classifier_run, capsys):
    assert main(["eval", str(classifier_run), "--repeat", "2"]) == 2
    one_error_line(capsys, "does not take repeat")
