"""An evaluated image classifier as one row of `genlab report` (genlab.evaluation.compare)."""

from __future__ import annotations

from typing import Any

from genlab.core.run import RunDir
from genlab.evaluation import compare
from genlab.tasks.image_classifier.recipe import ClassifierRecipe


def compare_row(run: RunDir, recipe: ClassifierRecipe) -> dict[str, Any]:
    """Accuracy under the evaluation's attack; runs judged under another attack or radius get their own panel."""
    report, scores = compare.evaluated(run, "robustness")
    train = recipe.train
    method = "standard training" if train.method == "standard" else f"{train.method} training (ε={train.epsilon:g})"
    return compare.row(
        run,
        report,
        dataset=f"{recipe.data.name}, {scores['attack']} ε={scores['epsilon']:g}",
        method=method,
        metric="robust_accuracy",
        quality=scores["robust_accuracy"],
        details=f"clean {scores['clean_accuracy']:.3f}",
    )
