"""Folk tunes: what a fixed CPU budget buys each way of training the transformer, beside the LSTM baseline.

Each variant trains from scratch on one thread for exactly `budget` CPU-seconds (warm-up in steps, then a cosine
decay over the fraction of the budget spent, so every variant ends its schedule on time), then its held-out NLL
per note event is measured on the validation and test tunes, as `genlab eval` does.

    python benchmarks/folk_budget_sweep.py 100 adamw muon muon-bylength lstm lstm-bylength
    # -> benchmarks/results/folk/budget_sweep_<budget>.json
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import torch

from genlab.core.muon import muon_adamw
from genlab.core.optim import adamw, set_lr
from genlab.data.folk import split_tokens
from genlab.models.lstm import LSTMConfig, LSTMLanguageModel
from genlab.models.transformer import Transformer
from genlab.tasks import load_recipe
from genlab.tasks.folk.baselines import LSTM_LR
from genlab.tasks.folk.process import PAD_ID, draw_rows, nll_per_note, token_nll, tune_tensor
from genlab.tasks.folk.training import load_splits, model_config

RESULTS = Path(__file__).resolve().parent / "results" / "folk"
WARMUP = 20
# name -> (recipe overrides, optimizer, by_length). lr is AdamW's (and Muon's AdamW part), muon at 0.02.
VARIANTS = {
    "adamw": ([], "adamw", False),
    "adamw-lr6e-3": (["train.lr=6e-3", "train.min_lr=6e-4"], "adamw", False),
    "adamw-bylength": ([], "adamw", True),
    "muon": ([], "muon", False),
    "muon-bylength": ([], "muon", True),
    "muon-bylength-2x128": (["model.n_layer=2", "model.n_embd=128"], "muon", True),
    "muon-bylength-4x96": (["model.n_layer=4"], "muon", True),
    "lstm": ([], "lstm", False),
    "lstm-bylength": ([], "lstm", True),
}


def lr_at(step: int, spent: float, peak: float, floor: float) -> float:
    if step < WARMUP:
        return peak * (step + 1) / (WARMUP + 1)
    return floor + 0.5 * (1 + math.cos(math.pi * min(spent, 1.0))) * (peak - floor)


def build(name: str):
    overrides, kind, by_length = VARIANTS[name]
    recipe = load_recipe("folk-tunes", ["data.batch_size=16", *overrides])
    torch.manual_seed(0)
    if kind == "lstm":
        model = LSTMLanguageModel(LSTMConfig(vocab_size=model_config(recipe).vocab_size))
        return model, adamw(model, LSTM_LR, (0.9, 0.99), 0.0), (LSTM_LR, LSTM_LR), by_length
    model = Transformer(model_config(recipe))
    t = recipe.train
    if kind == "muon":
        opt = muon_adamw(model, lambda n: n.startswith("blocks."), t.lr, 0.02, t.betas, t.weight_decay)
    else:
        opt = adamw(model, t.lr, t.betas, t.weight_decay)
    return model, opt, (t.lr, t.min_lr), by_length


def run(name: str, budget: float, tunes: dict[str, torch.Tensor]) -> dict:
    model, opt, (peak, floor), by_length = build(name)
    train = tunes["train"]
    lengths = (train != PAD_ID).sum(dim=1)
    draw = torch.Generator().manual_seed(0)
    start, step, real = time.process_time(), 0, 0
    model.train()
    while (spent := (time.process_time() - start) / budget) < 1:
        set_lr(opt, lr_at(step, spent, peak, floor))
        ids = train[draw_rows(lengths, 16, draw, by_length)]
        ids = ids[:, : int((ids != PAD_ID).sum(dim=1).max())]
        out = model(ids)
        loss = token_nll(getattr(out, "logits", out), ids).sum() / (ids[:, 1:] != PAD_ID).sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step, real = step + 1, real + int((ids != PAD_ID).sum())
    cpu = time.process_time() - start
    return {
        "steps": step,
        "cpu_seconds": round(cpu, 1),
        "real_tokens_seen": real,
        "cpu_ms_per_1k_tokens": round(1000 * cpu / real * 1000, 2),
        "validation_nll_per_note": round(nll_per_note(model, tunes["validation"]), 4),
        "test_nll_per_note": round(nll_per_note(model, tunes["test"]), 4),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def main() -> None:
    torch.set_num_threads(1)
    budget, names = float(sys.argv[1]), sys.argv[2:]
    recipe = load_recipe("folk-tunes", [])
    tunes, data = load_splits(recipe)
    tunes["test"] = tune_tensor(split_tokens(data, "test"), recipe.data.block_size)
    path = RESULTS / f"budget_sweep_{int(budget)}.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for name in names:
        load = os.getloadavg()[0]
        results[name] = {**run(name, budget, tunes), "load_average_before": round(load, 2)}
        print(name, results[name], flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
