"""An evaluated flow-matching run as one row of `genlab report` (genlab.evaluation.compare)."""

from __future__ import annotations

from typing import Any

from genlab.core.run import RunDir
from genlab.evaluation import compare
from genlab.evaluation.image_eval import quality_details
from genlab.tasks.flow.recipe import FlowRecipe


def compare_row(run: RunDir, recipe: FlowRecipe) -> dict[str, Any]:
    report, quality = compare.evaluated(run, "quality")
    details = quality_details(quality)
    captions = quality.get("caption_accuracy")
    if captions:  # text-conditioned: how often the evaluator sees the class a held-out caption asked for
        details += f", held-out captions {100 * captions['held_out_captions']:.1f} %"
    method = f"flow ({recipe.model.conditioning}, {quality['steps']} steps, w={quality['guidance']:g})"
    return compare.row(
        run, report, dataset=recipe.data.name, method=method, metric="fid", quality=quality["fid"], details=details
    )
