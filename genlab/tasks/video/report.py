"""An evaluated video run as one row of `genlab report` (genlab.evaluation.compare)."""

from __future__ import annotations

from typing import Any

from genlab.core.run import RunDir
from genlab.evaluation import compare
from genlab.tasks.video.recipe import VideoRecipe


def compare_row(run: RunDir, recipe: VideoRecipe) -> dict[str, Any]:
    report, video = compare.evaluated(run, "video")
    g, p = video["generate"], video["predict"]
    deviation = g["motion"]["speed_deviation"]
    details = (
        f"predict MSE {p['mse']:.4f} (copy-last {p['copy_last_frame']['mse']:.4f}), "
        f"clips read right {100 * g['clip_accuracy']:.1f} %, "
        f"speed deviation {'–' if deviation is None else f'{deviation:.2f}'}"
    )
    method = f"masked-frame flow ({video['size']}px, {video['steps']} steps, w={video['guidance']:g})"
    return compare.row(
        run, report, dataset="moving-mnist", method=method, metric="fid", quality=video["fid"], details=details
    )
