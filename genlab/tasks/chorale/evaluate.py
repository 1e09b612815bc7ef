"""`genlab eval` of a chorale run: held-out NLL per token beside a Kneser-Ney n-gram's, and the voice leading of
generated chorales and of harmonised test sopranos against Bach's own (the test chorales) — target: each rate
within 2x Bach's — once with the voice-leading rules in the sampler (`generated`, `harmonised`: what `genlab
generate` gives) and once with the model alone (`generated_free`, `harmonised_free`)."""

from __future__ import annotations

from typing import Any

from genlab.data.chorale_tokens import MODES, STEPS_PER_BAR, VOCAB, tokens_grid
from genlab.data.chorales import load_chorales, split_sequences
from genlab.evaluation.voice_leading import voice_leading
from genlab.tasks.chorale.process import ngram_baseline, nll_per_token, windows
from genlab.tasks.chorale.rules import SAMPLINGS
from genlab.tasks.chorale.sampling import sample_grids, soprano_given
from genlab.tasks.folk.baselines import train_lstm

HARMONISED_BARS = 8  # every chorale has at least this many: the test sopranos are cut to it and harmonised at once
RATES = ("parallel_fifths_octaves", "range_violations", "voice_crossings")


def against_bach(rates: dict[str, Any], bach: dict[str, Any]) -> dict[str, Any]:
    """Each rate as a multiple of Bach's (None where Bach's is 0), and whether it is within 2x."""
    out = {}
    for name in RATES:
        ours, his = rates[f"{name}_per_100_beats"], bach[f"{name}_per_100_beats"]
        ratio = ours / his if his else None
        out[name] = {"ratio_to_bach": None if ratio is None else round(ratio, 3), "within_2x": ours <= 2 * his}
    return out


def generated_section(handle: Any, n: int, seed: int, bach: dict[str, Any], sampling: str) -> dict[str, Any]:
    """n chorales of eval.bars bars (half major, half minor) and their voice leading."""
    e = handle.recipe.eval
    grids = []
    for i, mode in enumerate(MODES):
        count = n // 2 + (n % 2 if i == 0 else 0)
        if count:
            grids += sample_grids(
                handle.model,
                mode,
                e.bars * STEPS_PER_BAR,
                count,
                seed + i,
                e.temperature,
                e.top_k or None,
                sampling=sampling,
            )
    rates = voice_leading(grids)
    return {**rates, "against_bach": against_bach(rates, bach), "bars": e.bars}


def harmonised_section(handle: Any, test: list[list[str]], seed: int, sampling: str) -> dict[str, Any]:
    """The first HARMONISED_BARS bars of each test chorale's soprano harmonised by the model, against Bach's own
    alto, tenor and bass of the same bars (and the share of their notes the model chose as Bach did)."""
    e, steps = handle.recipe.eval, HARMONISED_BARS * STEPS_PER_BAR
    bach_grids = [grid[:steps] for grid in (tokens_grid(t)[1] for t in test) if len(grid) >= steps]
    modes = [t[0][1:-1] for t in test if len(t) > steps * 4]
    grids = []
    for mode in MODES:
        rows = [g for g, m in zip(bach_grids, modes) if m == mode]
        if rows:
            soprano = [[step[0] for step in g] for g in rows]
            top_k, given = e.top_k or None, soprano_given(soprano)
            grids += sample_grids(handle.model, mode, steps, len(rows), seed, e.temperature, top_k, given, sampling)
    bach_grids = [g for mode in MODES for g, m in zip(bach_grids, modes) if m == mode]  # the order of `grids`
    bach, rates = voice_leading(bach_grids), voice_leading(grids)
    same = sum(a[v] == b[v] for g, h in zip(grids, bach_grids) for a, b in zip(g, h) for v in (1, 2, 3))
    return {
        **rates,
        "against_bach": against_bach(rates, bach),
        "bach_same_bars": bach,
        "lower_voice_tokens_as_bach": round(same / max(3 * steps * len(grids), 1), 4),
    }


def lstm_baseline(train: list[list[str]], test: list[list[str]], bars: int, cpu_seconds: float, seed: int) -> dict:
    """The folk task's LSTM (folk-rnn's shape) trained on the training windows for `cpu_seconds` of CPU time,
    scored on the test windows exactly as the transformer is."""
    lstm, trained = train_lstm(windows(train, bars), cpu_seconds, seed, vocab_size=len(VOCAB))
    return {"nll_per_token": nll_per_token(lstm, test, bars), "budget_cpu_seconds": cpu_seconds, **trained}


def evaluate_run(handle: Any, n: int, seed: int, lstm_seconds: float | None = None) -> dict[str, Any]:
    """The `test` section: NLL per token (transformer, n-gram, and an LSTM trained for `lstm_seconds` of CPU
    time), the voice leading of Bach's test chorales, of n generated chorales and of the harmonised test
    sopranos."""
    recipe = handle.recipe
    data = load_chorales(recipe.data.path)
    splits = {s: split_sequences(data, s) for s in ("train", "validation", "test")}
    metrics: dict[str, Any] = {
        "nll_per_token": nll_per_token(handle.model, splits["test"], recipe.data.window_bars),
        "test_chorales": len(splits["test"]),
    }
    metrics["baselines"] = {"kneser_ney": ngram_baseline(splits["train"], splits["validation"], splits["test"])}
    if lstm_seconds is not None:
        bars = recipe.data.window_bars
        metrics["baselines"]["lstm"] = lstm_baseline(splits["train"], splits["test"], bars, lstm_seconds, seed)
    bach = voice_leading([tokens_grid(t)[1] for t in splits["test"]])
    metrics["bach_test"] = bach
    for sampling in SAMPLINGS:  # with the voice-leading rules (what generate does), then the model alone
        suffix = "" if sampling == "rules" else "_free"
        metrics[f"generated{suffix}"] = generated_section(handle, n, seed, bach, sampling)
        metrics[f"harmonised{suffix}"] = harmonised_section(handle, splits["test"], seed, sampling)
    return metrics
