"""An evaluated text-to-speech run as one row of `genlab report` (genlab.evaluation.compare)."""

from __future__ import annotations

from typing import Any

from genlab.core.run import RunDir
from genlab.evaluation import compare
from genlab.tasks.tts.recipe import SpeechRecipe


def compare_row(run: RunDir, recipe: SpeechRecipe) -> dict[str, Any]:
    """Mel-cepstral distortion to the held-out recordings; the baseline is the unconverted front-end voice."""
    report, speech = compare.evaluated(run, "speech")
    return compare.row(
        run,
        report,
        dataset=recipe.data.name,
        method=f"voice conversion of {speech['voice']}",
        metric="mcd_db",
        quality=speech["mcd_db"],
        details=f"{speech['prompts']} held-out sentences",
        baseline=speech["mcd_unconverted_db"],
        baseline_name="unconverted",
    )
