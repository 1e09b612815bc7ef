"""Folk tunes: why the LSTM sees more tunes than the transformer in the same CPU time. The CPU seconds of one
training step (forward and backward) of the `folk-tunes` transformer and of the LSTM baseline on the same batch
of real training tunes, one thread, and the transformer's share spent in attention (torch's profiler).

    python benchmarks/folk_step_cost.py   # -> benchmarks/results/folk/step_cost.json
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from genlab.models.lstm import LSTMConfig, LSTMLanguageModel
from genlab.models.transformer import Transformer
from genlab.tasks import load_recipe
from genlab.tasks.folk.baselines import LSTM_BATCH
from genlab.tasks.folk.process import PAD_ID, token_nll, tune_loss
from genlab.tasks.folk.training import load_splits, model_config

RESULTS = Path(__file__).resolve().parent / "results" / "folk" / "step_cost.json"
REPEATS = 5


def cpu_seconds(step) -> float:
    step()  # warm-up
    start = time.process_time()
    for _ in range(REPEATS):
        step()
    return (time.process_time() - start) / REPEATS


def attention_share(model: Transformer, ids: torch.Tensor) -> float:
    with torch.autograd.profiler.profile() as prof:
        tune_loss(model, ids).backward()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    return sum(e.self_cpu_time_total for e in events if "attention" in e.key) / total


def main() -> None:
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    recipe = load_recipe("folk-tunes", [])
    tunes, _ = load_splits(recipe)
    rows = torch.randint(len(tunes["train"]), (LSTM_BATCH,), generator=torch.Generator().manual_seed(0))
    ids = tunes["train"][rows]
    ids = ids[:, : int((ids != PAD_ID).sum(dim=1).max())]  # (16, T): as both trainers cut their batches
    transformer = Transformer(model_config(recipe))
    lstm = LSTMLanguageModel(LSTMConfig(vocab_size=transformer.config.vocab_size))
    result = {
        "batch": list(ids.shape),
        "real_tokens": int((ids != PAD_ID).sum()),
        "transformer_cpu_seconds_per_step": round(cpu_seconds(lambda: tune_loss(transformer, ids).backward()), 4),
        "lstm_cpu_seconds_per_step": round(cpu_seconds(lambda: token_nll(lstm(ids), ids).sum().backward()), 4),
        "transformer_attention_share": round(attention_share(transformer, ids), 3),
        "threads": 1,
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    }
    result["ratio"] = round(result["transformer_cpu_seconds_per_step"] / result["lstm_cpu_seconds_per_step"], 2)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
