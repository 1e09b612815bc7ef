"""An evaluated GAN run as one row of `genlab report` (genlab.evaluation.compare)."""

from __future__ import annotations

from typing import Any

from genlab.core.run import RunDir
from genlab.evaluation import compare
from genlab.evaluation.image_eval import quality_details
from genlab.tasks.gan.recipe import GanRecipe


def compare_row(run: RunDir, recipe: GanRecipe) -> dict[str, Any]:
    report, quality = compare.evaluated(run, "quality")
    method = ("conditional " if recipe.model.conditional else "") + f"{recipe.model.arch} GAN"
    details = quality_details(quality)
    return compare.row(
        run, report, dataset=recipe.data.name, method=method, metric="fid", quality=quality["fid"], details=details
    )
