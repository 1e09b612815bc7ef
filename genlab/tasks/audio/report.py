"""An evaluated spoken-digit GAN run as one row of `genlab report` (genlab.evaluation.compare)."""

from __future__ import annotations

from typing import Any

from genlab.core.run import RunDir
from genlab.evaluation import compare
from genlab.tasks.audio.recipe import AudioRecipe


def compare_row(run: RunDir, recipe: AudioRecipe) -> dict[str, Any]:
    """Fréchet distance in the digit evaluator's features; the baseline is the held-out real clips' own."""
    report, quality = compare.evaluated(run, "quality")
    ceiling = quality.get("ceiling") or {}
    model = recipe.model
    method = f"GAN ({model.g_conditioning} G, {model.d_conditioning} D)"  # how each net is told the digit
    details = f"digit accuracy {100 * quality['accuracy']:.1f} %, IS {quality['inception_score']['mean']:.2f}"
    return compare.row(
        run,
        report,
        dataset=recipe.data.name,
        method=method,
        metric="frechet_distance",
        quality=quality["frechet_distance"],
        details=details,
        baseline=ceiling.get("frechet_distance"),
        baseline_name="held-out real clips",
    )
