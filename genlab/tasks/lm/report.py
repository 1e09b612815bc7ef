"""An evaluated language model as one row of `genlab report` (genlab.evaluation.compare)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genlab.core.run import RunDir
from genlab.evaluation import compare
from genlab.tasks.lm.recipe import LMRecipe


def compare_row(run: RunDir, recipe: LMRecipe) -> dict[str, Any]:
    """Test loss per token. Losses compare only under one tokenizer and objective: those name the panel."""
    report, test = compare.evaluated(run, "test")
    data = recipe.data
    corpora = data.corpus if isinstance(data.corpus, list) else [data.corpus]
    tokenizer = "char" if data.tokenizer == "char" else f"{data.tokenizer} {data.vocab_size}"
    dataset = f"{' + '.join(Path(c).name for c in corpora)} ({tokenizer}, {recipe.model.objective})"
    return compare.row(
        run,
        report,
        dataset=dataset,
        method=recipe.name,
        metric="loss",
        quality=test["loss"],
        details=f"perplexity {test['perplexity']:.2f}",
    )
