"""A fine-tuning run as one row of `genlab report` (genlab.evaluation.compare), read from its report.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genlab.core.run import RunDir
from genlab.errors import GenlabError
from genlab.evaluation import compare


def compare_row(run: RunDir, recipe: Any) -> dict[str, Any]:
    """A run must have its `finetune` and `test` sections; `cost` may be missing and then reads as None."""
    report = run.read_report()
    if "finetune" not in report:
        raise GenlabError(f"{run.report_path}: no 'finetune' section; was its training interrupted?")
    finetune, test = report["finetune"], compare.scored(run, report, "test")
    metric = test.get("metric")
    if metric not in test:
        raise GenlabError(f"{run.report_path}: the 'test' section has no score for its metric {metric!r}")
    baseline = test.get("baseline") or {}
    trainable, total = finetune.get("trainable_parameters"), finetune.get("total_parameters")
    fraction = finetune.get("trainable_fraction")
    if fraction is None and trainable is not None and total:
        fraction = trainable / total
    dataset = finetune.get("dataset", finetune.get("task", "?"))  # reports before 0.2 called it "task"
    chrf = test.get("chrf") if metric == "bleu" else None  # seq2seq: chrF is the second opinion on BLEU
    return compare.row(
        run,
        report,
        dataset=Path(dataset).name,
        method=finetune.get("method", "?"),
        start=finetune.get("start", "?"),
        init=finetune.get("init"),
        trainable_parameters=trainable,
        trainable_fraction=fraction,
        metric=metric,
        quality=test[metric],
        details=None if chrf is None else f"chrF {chrf:.1f}",
        baseline=baseline.get(metric),
        baseline_name=baseline.get("name"),
    )
