"""An evaluated token-transformer run as one row of `genlab report` (genlab.evaluation.compare)."""

from __future__ import annotations

from typing import Any

from genlab.core.run import RunDir
from genlab.evaluation import compare
from genlab.evaluation.image_eval import quality_details
from genlab.tasks.vq_dalle.recipe import VQDalleRecipe


def compare_row(run: RunDir, recipe: VQDalleRecipe) -> dict[str, Any]:
    report, quality = compare.evaluated(run, "quality")
    details = quality_details(quality)
    details += f", held-out captions {100 * quality['caption_accuracy']['held_out_captions']:.1f} %"
    method = f"VQGAN tokens + transformer (w={quality['guidance']:g})"
    return compare.row(
        run, report, dataset=recipe.data.name, method=method, metric="fid", quality=quality["fid"], details=details
    )
