"""An evaluated translation run as one row of `genlab report` (genlab.evaluation.compare)."""

from __future__ import annotations

from typing import Any

from genlab.core.run import RunDir
from genlab.evaluation import compare
from genlab.tasks.translation.recipe import TranslationRecipe


def compare_row(run: RunDir, recipe: TranslationRecipe) -> dict[str, Any]:
    """Test BLEU (beam search) on the held-out books, chrF and greedy BLEU beside it."""
    report, test = compare.evaluated(run, "test")
    d = recipe.data
    return compare.row(
        run,
        report,
        dataset=f"{d.path or d.source} -> {d.target} (held-out books)",
        method=recipe.name,
        metric="bleu",
        quality=test["bleu"],
        details=f"chrF {test['chrf']:.1f}, greedy BLEU {test['greedy']['bleu']:.1f}, beam {test['beam']}",
    )
