"""An evaluated folk-tune run as one row of `genlab report` (genlab.evaluation.compare)."""

from __future__ import annotations

from typing import Any

from genlab.core.run import RunDir
from genlab.evaluation import compare
from genlab.tasks.folk.recipe import FolkRecipe


def compare_row(run: RunDir, recipe: FolkRecipe) -> dict[str, Any]:
    """Held-out NLL per note event (lower is better), the n-gram baseline beside it."""
    report, test = compare.evaluated(run, "test")
    generated = test["generated"]
    ngram = test.get("baselines", {}).get("kneser_ney", {})
    details = (
        f"{100 * generated['reads_back_and_fills_bars']:.0f} % of tunes read back and fill their bars, "
        f"key kept {100 * generated['key_consistency']:.0f} %"
    )
    return compare.row(
        run,
        report,
        dataset="folk tunes (event tokens, NLL per note)",
        method=recipe.name,
        metric="nll_per_note",
        quality=test["nll_per_note"],
        details=details,
        baseline=ngram.get("nll_per_note"),
        baseline_name=f"Kneser-Ney {ngram.get('order', '')}-gram",
    )
