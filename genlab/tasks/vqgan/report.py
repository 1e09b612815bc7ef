"""An evaluated VQGAN run as one row of `genlab report` (genlab.evaluation.compare)."""

from __future__ import annotations

from typing import Any

from genlab.core.run import RunDir
from genlab.evaluation import compare
from genlab.tasks.vqgan.recipe import VQGANRecipe


def compare_row(run: RunDir, recipe: VQGANRecipe) -> dict[str, Any]:
    report, rec = compare.evaluated(run, "reconstruction")
    details = (
        f"FID of reconstructions {rec['fid']:.2f}, codebook use {100 * rec['codebook_use']:.1f} % "
        f"of {rec['codebook_size']}, perplexity {rec['perplexity']:.0f}, {rec['num_images']:,} held-out images"
    )
    method = f"VQGAN ({recipe.model.codebook_size} codes, 7x7 tokens)"
    return compare.row(
        run, report, dataset=recipe.data.name, method=method, metric="psnr_db", quality=rec["psnr_db"], details=details
    )
