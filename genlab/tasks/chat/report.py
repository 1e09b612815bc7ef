"""An evaluated chat run as a row of `genlab report`: its first kind of instruction by that kind's metric."""

from __future__ import annotations

from typing import Any

from genlab.core.run import RunDir
from genlab.errors import GenlabError
from genlab.evaluation import compare
from genlab.tasks.chat.recipe import ChatRecipe
from genlab.tasks.chat.scoring import headline


def compare_row(run: RunDir, recipe: ChatRecipe) -> dict[str, Any]:
    """The first kind's figure (BLEU, macro-F1, ...); every kind's and the end-of-turn share as details."""
    report, chat = compare.evaluated(run, "chat")
    kinds = chat.get("kinds") or {}
    if not kinds:
        raise GenlabError(f"{run.path}: its chat section scores no kind; run `genlab eval {run.path}`")
    first, metrics = next(iter(kinds.items()))
    key = headline(metrics)
    details = ", ".join(f"{kind} {headline(m)} {m[headline(m)]:.3g}" for kind, m in kinds.items())
    return compare.row(
        run,
        report,
        dataset=f"chat: {first}",
        method=recipe.name,
        metric=f"{first}_{key}",
        quality=metrics[key],
        details=f"{details}; ended with <|end|> {chat['ended_rate']:.0%}",
    )
