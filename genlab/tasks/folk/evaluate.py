"""`genlab eval` of a folk run: held-out NLL per note event beside the baselines, and statistics of generated
tunes whose headers are the test tunes' own (so both sets ask for the same metres, modes and types)."""

from __future__ import annotations

from typing import Any

from genlab.data.folk import load_folk, split_tokens
from genlab.evaluation.folk_stats import score_tunes
from genlab.tasks.folk.baselines import baseline_scores
from genlab.tasks.folk.grammar import draw_tunes
from genlab.tasks.folk.process import nll_per_note, tune_tensor


def generated_tunes(handle: Any, headers: list[list[str]], n: int, seed: int) -> list[list[str]]:
    """n tunes, the i-th with the header of test tune i (cycling), seeded seed + i."""
    e = handle.recipe.eval
    tunes = []
    for i in range(n):
        prefix = headers[i % len(headers)]
        tunes += draw_tunes(
            handle.model, prefix, 1, seed + i, e.temperature, e.top_k or None, e.max_tokens, e.sampling, e.guidance
        )
    return tunes


def evaluate_run(handle: Any, n: int, seed: int, lstm_seconds: float | None) -> dict[str, Any]:
    """The `test` section: NLL per note (transformer, n-gram, an LSTM trained for `lstm_seconds` of CPU unless
    None) and the generated tunes' scores."""
    recipe = handle.recipe
    data = load_folk(recipe.data.corpus, recipe.data.path)
    block = handle.config.block_size
    splits = {s: split_tokens(data, s) for s in ("train", "validation", "test")}
    ids = {s: tune_tensor(t, block) for s, t in splits.items()}
    metrics: dict[str, Any] = {"nll_per_note": nll_per_note(handle.model, ids["test"]), "test_tunes": len(ids["test"])}
    metrics["baselines"] = baseline_scores(
        ids["train"], ids["validation"], ids["test"], lstm_seconds, seed, recipe.data.by_length
    )
    test = [t[:block] for t in splits["test"]]
    generated = generated_tunes(handle, [t[:4] for t in test], n, seed)
    metrics["generated"] = score_tunes(generated, test, [t[:block] for t in splits["train"]])
    metrics["generated"]["sampling"] = recipe.eval.sampling
    metrics["generated"]["guidance"] = recipe.eval.guidance
    return metrics
