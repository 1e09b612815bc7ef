"""A language-model run opened for use: its model and tokenizer, test-split scoring, streamed text."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

import torch

from genlab.core.checkpoint import load_weights, open_run_checkpoint
from genlab.core.recipe import from_dict
from genlab.core.run import CostMeter, RunDir
from genlab.data.tokens import corpus_texts, open_tokens, write_tokens
from genlab.errors import GenlabError
from genlab.interop.onnx import ExportGraph, token_logits_graph
from genlab.io.tokenizers import UNK, Tokenizer, load_tokenizer
from genlab.models.generation import stream, text_pieces
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tasks.contract import RunHandle, TextDecoding
from genlab.tasks.lm.recipe import LMRecipe
from genlab.tasks.lm.training import estimate_loss


def load_lm(run: RunDir, checkpoint: str = "last") -> tuple[Transformer, Tokenizer]:
    """The trained model of an LM run (eval mode, CPU) and its tokenizer."""
    folder, meta = open_run_checkpoint(run, checkpoint, "lm")
    model = Transformer(from_dict(TransformerConfig, meta["model"]))
    load_weights(folder, {"model": model}, meta)
    tokenizer = load_tokenizer(run.path / "tokenizer.json")
    if tokenizer.vocab_size != model.config.vocab_size:
        raise GenlabError(
            f"{run.path / 'tokenizer.json'} has {tokenizer.vocab_size} tokens but the model "
            f"expects {model.config.vocab_size}"
        )
    return model.eval(), tokenizer


class LMRun(RunHandle):
    eval_section = "test"
    endpoint = "completions"

    def __init__(self, run: RunDir, recipe: LMRecipe, checkpoint: str = "last"):
        super().__init__(run, recipe, checkpoint)
        self.model, self.tokenizer = load_lm(run, checkpoint)

    def generate(
        self,
        prompt: str | None = None,
        max_tokens: int = 256,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        stop: str | None = None,
        seed: int | None = None,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        stream: bool = False,
    ) -> str | Iterator[str]:
        """The continuation of `prompt` (not the prompt itself), or with stream=True its pieces as they
        are generated. temperature 0 is greedy; the text ends before `stop`; the penalties (OpenAI's, in
        [-2, 2]) lower the scores of tokens already generated: once each, and per time.

        Args:
            top_k: None = every token may be drawn
        """
        if prompt is None:
            raise GenlabError("a language-model run needs a prompt (--prompt TEXT)")
        unk = self.tokenizer.token_id(UNK)
        unseen = sorted({c for c in prompt if unk is not None and self.tokenizer.encode(c) == [unk]})
        if unseen:  # a char model cannot read them: say so rather than silently answer something else
            warnings.warn(
                f"the model never saw {', '.join(map(repr, unseen))} in training: read as {UNK}", stacklevel=2
            )
        pieces = stream_text(
            self.model,
            self.tokenizer,
            prompt,
            max_tokens,
            temperature,
            top_k,
            top_p,
            stop,
            seed,
            presence_penalty,
            frequency_penalty,
        )
        return pieces if stream else "".join(pieces)

    def text_decoding(self) -> TextDecoding:
        return TextDecoding(self.model, self.tokenizer, self.tokenizer.encode)

    def export_graph(self) -> ExportGraph:
        """The transformer without a cache: token ids -> logits at every position."""
        return token_logits_graph(self.model, "tokens of the run's tokenizer (RUN/tokenizer.json)")

    def evaluate(self) -> dict[str, Any]:
        """Test-split loss and perplexity (windows spread over the whole split); report.json `test`."""
        recipe, tokenizer = self.recipe, self.tokenizer
        meter = CostMeter()
        path = self.path / "test.bin"
        if not path.is_file():  # tokenized once, with the run's own tokenizer
            write_tokens(path, corpus_texts(recipe.data.corpus, "test", recipe.data.limit_chars), tokenizer)
        tokens = open_tokens(path, tokenizer.vocab_size)
        loss = estimate_loss(
            self.model, tokenizer, tokens, recipe.data.batch_size, recipe.eval.eval_iters, torch.device("cpu")
        )
        metrics = {
            "loss": loss,
            "perplexity": math.exp(loss),
            "tokens": len(tokens),
            "objective": recipe.model.objective,
            "checkpoint": self.checkpoint,
            "eval_seconds": meter.snapshot()["wall_seconds"],
        }
        self.run.update_report(self.eval_section, metrics)
        return metrics


def stream_text(
    model: Transformer,
    tokenizer: Tokenizer,
    prompt: str,
    max_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop: str | None = None,
    seed: int | None = None,
    presence_penalty: float = 0.0,
    frequency_penalty: float = 0.0,
) -> Iterator[str]:
    """Yield the continuation of `prompt` piece by piece as it is generated, ending before `stop`."""
    if not prompt:
        raise GenlabError("the prompt is empty: pass --prompt TEXT")
    if max_tokens < 1:
        raise GenlabError(f"--max-tokens must be >= 1, got {max_tokens}")
    idx = torch.tensor([tokenizer.encode(prompt)])  # (1, T)
    tokens = stream(
        model,
        idx,
        max_tokens,
        temperature,
        top_k,
        top_p,
        seed=seed,
        presence_penalty=presence_penalty,
        frequency_penalty=frequency_penalty,
    )
    yield from text_pieces(tokenizer, (int(nxt[0]) for nxt in tokens), stop)
