"""What the CLI does with a language-model run directory: load it, score the test split, stream text."""
from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from genlab.config import LMRecipe, from_dict
from genlab.data.tokens import corpus_texts, open_tokens, write_tokens
from genlab.errors import GenlabError
from genlab.generation import stream
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tokenizers import Tokenizer, load_tokenizer
from genlab.tracking import CostMeter, RunDir
from genlab.training.checkpoint import load_weights, open_run_checkpoint
from genlab.training.lm import estimate_loss


def load_lm(run_path: Path, checkpoint: str = "last") -> tuple[Transformer, Tokenizer, LMRecipe]:
    """The trained model (eval mode, CPU), its tokenizer and its recipe."""
    run, folder, meta = open_run_checkpoint(run_path, checkpoint, "lm")
    recipe = from_dict(LMRecipe, run.read_config())
    model = Transformer(from_dict(TransformerConfig, meta["model"]))
    load_weights(folder, {"model": model}, meta)
    tokenizer = load_tokenizer(run.path / "tokenizer.json")
    if tokenizer.vocab_size != model.config.vocab_size:
        raise GenlabError(f"{run.path / 'tokenizer.json'} has {tokenizer.vocab_size} tokens but the model "
                          f"expects {model.config.vocab_size}")
    return model.eval(), tokenizer, recipe


def evaluate_lm(run_path: Path, checkpoint: str = "last") -> dict[str, Any]:
    """Test-split loss and perplexity (windows spread over the whole split), stored in report.json."""
    model, tokenizer, recipe = load_lm(run_path, checkpoint)
    meter = CostMeter()
    path = Path(run_path) / "test.bin"
    if not path.is_file():  # tokenized once, with the run's own tokenizer
        write_tokens(path, corpus_texts(recipe.data.corpus, "test", recipe.data.limit_chars), tokenizer)
    tokens = open_tokens(path, tokenizer.vocab_size)
    loss = estimate_loss(model, tokenizer, tokens, recipe.data.batch_size, recipe.eval.eval_iters, torch.device("cpu"))
    metrics = {"loss": loss, "perplexity": math.exp(loss), "tokens": len(tokens),
               "objective": recipe.model.objective, "checkpoint": checkpoint,
               "eval_seconds": meter.snapshot()["wall_seconds"]}
    RunDir(run_path).update_report("test", metrics)
    return metrics


def stream_text(model: Transformer, tokenizer: Tokenizer, prompt: str, max_tokens: int, temperature: float = 1.0,
                top_k: int | None = None, top_p: float | None = None, stop: str | None = None,
                seed: int | None = None) -> Iterator[str]:
    """Yield the continuation of `prompt` piece by piece as it is generated, ending before `stop`."""
    if not prompt:
        raise GenlabError("the prompt is empty: pass --prompt TEXT")
    if max_tokens < 1:
        raise GenlabError(f"--max-tokens must be >= 1, got {max_tokens}")
    idx = torch.tensor([tokenizer.encode(prompt)])  # (1, T)
    ids: list[int] = []
    shown = 0
    # Hold back what could be the start of `stop` (or half a UTF-8 character) until it is settled.
    hold = len(stop) - 1 if stop else 0
    for nxt in stream(model, idx, max_tokens, temperature, top_k, top_p, seed=seed):
        ids.append(int(nxt[0]))
        text = tokenizer.decode(ids)
        if stop and stop in text:
            yield text[shown:text.index(stop)]
            return
        ready = len(text) - hold
        if text.endswith("\ufffd"):
            ready = min(ready, len(text) - 1)
        if ready > shown:
            yield text[shown:ready]
            shown = ready
    text = tokenizer.decode(ids)
    if len(text) > shown:
        yield text[shown:]
