"""An evaluated glyph-translation run as one row of `genlab report` (genlab.evaluation.compare)."""

from __future__ import annotations

from typing import Any

from genlab.core.run import RunDir
from genlab.evaluation import compare
from genlab.tasks.pix2pix.recipe import Pix2PixRecipe


def compare_row(run: RunDir, recipe: Pix2PixRecipe) -> dict[str, Any]:
    """SSIM to the true glyphs of held-out characters; the judges' accuracies and the copy-the-source baseline
    in the details."""
    report, scores = compare.evaluated(run, "translation")
    data, train = recipe.data, recipe.train
    method = "pix2pix" if len(data.targets) == 1 and train.init is None else "zi2zi"
    if train.init is not None:
        method = f"few-shot {train.method} (k={data.shots or 'all'})"
    copy = scores["copy_source"]
    details = f"L1 {scores['l1']:.3f}; copying the source: SSIM {copy['ssim']:.3f}"
    if "font_accuracy" in scores:  # glyphs: the judges too
        details = (
            f"font {100 * scores['font_accuracy']:.1f} %, character {100 * scores['char_accuracy']:.1f} %, "
            f"{details}, font {100 * copy['font_accuracy']:.1f} %"
        )
    return compare.row(
        run,
        report,
        dataset=f"{data.kind} {data.source} -> {', '.join(data.targets)}",
        method=method,
        metric="ssim",
        quality=scores["ssim"],
        details=details,
    )
