"""An evaluated chorale run as one row of `genlab report` (genlab.evaluation.compare)."""

from __future__ import annotations

from typing import Any

from genlab.core.run import RunDir
from genlab.evaluation import compare
from genlab.tasks.chorale.recipe import ChoraleRecipe


def compare_row(run: RunDir, recipe: ChoraleRecipe) -> dict[str, Any]:
    """Held-out NLL per grid token (lower is better), the n-gram baseline beside it."""
    report, test = compare.evaluated(run, "test")
    generated, bach = test["generated"], test["bach_test"]
    ngram = test.get("baselines", {}).get("kneser_ney", {})
    details = (
        f"parallel 5ths/8ves per 100 beats {generated['parallel_fifths_octaves_per_100_beats']:.1f} "
        f"(Bach {bach['parallel_fifths_octaves_per_100_beats']:.1f})"
    )
    return compare.row(
        run,
        report,
        dataset="Bach chorales (S A T B grid, NLL per token)",
        method=recipe.name,
        metric="nll_per_token",
        quality=test["nll_per_token"],
        details=details,
        baseline=ngram.get("nll_per_token"),
        baseline_name=f"Kneser-Ney {ngram.get('order', '')}-gram",
    )
