"""A chat run opened for use: answer a conversation (whole or streamed), score each kind of instruction on
held-out conversations, and serve /v1/chat/completions (and /v1/completions on rendered prompts)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from genlab.core.checkpoint import load_network
from genlab.core.run import CostMeter, RunDir
from genlab.data.chat import Exchange, load_exchanges, spread
from genlab.errors import GenlabError
from genlab.interop.onnx import ExportGraph, token_logits_graph
from genlab.io.chat_template import Message, render
from genlab.io.files import atomic_write_text
from genlab.io.tokenizers import load_tokenizer
from genlab.models.generation import stream, text_pieces
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tasks.chat.process import answer_all, prompt_ids, stop_ids
from genlab.tasks.chat.recipe import ChatDecodingConfig, ChatRecipe
from genlab.tasks.chat.scoring import headline, score_kind
from genlab.tasks.contract import RunHandle, TextDecoding

SHOWN = 5  # answers per kind kept in the report (all of them go to RUN/chat_outputs.jsonl)


class ChatRun(RunHandle):
    eval_section = "chat"
    endpoint = "completions"

    def __init__(self, run: RunDir, recipe: ChatRecipe, checkpoint: str = "last"):
        super().__init__(run, recipe, checkpoint)
        self.model = load_network(run, checkpoint, "chat", TransformerConfig, Transformer, "model").network
        self.tokenizer = load_tokenizer(run.path / "tokenizer.json")
        if self.tokenizer.vocab_size != self.model.config.vocab_size:
            raise GenlabError(f"{run.path / 'tokenizer.json'} does not fit the model's vocabulary")
        self.stops = stop_ids(self.tokenizer)

    def text_decoding(self) -> TextDecoding:
        """A raw prompt (already in the chat template) through /v1/completions; messages through
        /v1/chat/completions, which renders them with the template first. Requests that leave the penalties
        out get the run's (recipe `decoding`)."""
        d = self.recipe.decoding
        return TextDecoding(
            self.model, self.tokenizer, self.tokenizer.encode, self.stops, True, d.presence_penalty, d.frequency_penalty
        )

    def export_graph(self) -> ExportGraph:
        return token_logits_graph(self.model, "a conversation in the chat template, tokenized by RUN/tokenizer.json")

    def reply(
        self,
        messages: Sequence[Message],
        max_tokens: int = 160,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: str | None = None,
        presence_penalty: float | None = None,
        frequency_penalty: float | None = None,
    ) -> Iterator[str]:
        """The assistant's next turn, piece by piece, ending at the end-of-turn marker (or `stop`); penalties
        left out are the run's (recipe `decoding`)."""
        if max_tokens < 1:
            raise GenlabError(f"--max-tokens must be >= 1, got {max_tokens}")
        presence, frequency = self.text_decoding().penalties(presence_penalty, frequency_penalty)
        block = self.model.config.block_size
        ids = prompt_ids(self.tokenizer, messages, block)
        room = min(max_tokens, block - len(ids))
        tokens = stream(
            self.model,
            torch.tensor([ids]),
            room,
            temperature,
            seed=seed,
            stop=self.stops,
            presence_penalty=presence,
            frequency_penalty=frequency,
        )
        yield from text_pieces(self.tokenizer, (int(nxt[0]) for nxt in tokens), stop, self.stops)

    def generate(
        self,
        prompt: str | None = None,
        system: str | None = None,
        max_tokens: int = 160,
        temperature: float = 0.0,
        seed: int | None = None,
        presence_penalty: float | None = None,
        frequency_penalty: float | None = None,
    ) -> str:
        """The assistant's answer to one user message `prompt` (under a `system` prompt if given); temperature 0
        is greedy.

        Args:
            presence_penalty: default: the run's (recipe decoding.presence_penalty, 0)
            frequency_penalty: default: the run's (recipe decoding.frequency_penalty, 0.3)
        """
        if not prompt or not prompt.strip():
            raise GenlabError("a chat run needs a message: --prompt TEXT")
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        return "".join(self.reply(messages, max_tokens, temperature, seed, None, presence_penalty, frequency_penalty))

    def held_out(self, split: str = "test") -> dict[str, list[Exchange]]:
        """Per kind the run was trained on: `eval_limit` conversations of `split` spread over it, each one
        instruction and its reference answer (no system prompt, no earlier turn)."""
        d = self.recipe.data
        held_out = {}
        for kind, splits in load_exchanges(d.file, self.recipe.seed).items():
            if d.file or getattr(d, kind, 0):
                held_out[kind] = [Exchange(kind, ex.messages[:2]) for ex in spread(splits[split], d.eval_limit)]
        return {kind: exchanges for kind, exchanges in held_out.items() if exchanges}

    def answer_kinds(
        self, split: str = "test", decoding: ChatDecodingConfig | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Every kind's metrics (genlab.tasks.chat.scoring) on held-out conversations of `split`, answered
        greedily with `decoding` (default: the run's): (kind -> metrics, one row per answer)."""
        e, block = self.recipe.eval, self.model.config.block_size
        kinds: dict[str, Any] = {}
        rows = []
        for kind, exchanges in self.held_out(split).items():
            fitting = [ex for ex in exchanges if len(self.tokenizer.encode(render(ex.messages[:1]))) < block - 8]
            prompts = [prompt_ids(self.tokenizer, ex.messages[:1], block) for ex in fitting]
            finished = answer_all(
                self.model, prompts, e.max_new_tokens, self.stops, e.batch_size, decoding or self.recipe.decoding
            )
            answers = [self.tokenizer.decode(seq.tokens) for seq in finished]
            ended = [seq.finish_reason == "stop" for seq in finished]
            kinds[kind] = score_kind(kind, fitting, answers, ended)
            rows += [
                {"kind": kind, "user": ex.messages[0]["content"], "answer": a, "reference": ex.reference, "ended": d}
                for ex, a, d in zip(fitting, answers, ended)
            ]
        return kinds, rows

    def evaluate(self) -> dict[str, Any]:
        """Each kind's metric on the held-out (test) conversations, greedy with the run's penalties; report.json
        `chat`."""
        meter = CostMeter()
        kinds, rows = self.answer_kinds()
        metrics: dict[str, Any] = {"kinds": kinds, "checkpoint": self.checkpoint}
        metrics["decoding"] = dataclasses.asdict(self.recipe.decoding)
        for kind, scores in kinds.items():
            metrics[f"{kind}_{headline(scores)}"] = scores[headline(scores)]  # `genlab report` reads these
            shown = [row for row in rows if row["kind"] == kind][:SHOWN]
            scores["shown"] = [{k: row[k] for k in ("user", "answer", "reference")} for row in shown]
        total = len(rows)
        metrics["ended_rate"] = sum(r["ended"] for r in rows) / max(total, 1)
        metrics |= {"examples": total, "eval_seconds": meter.snapshot()["wall_seconds"]}
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        atomic_write_text(self.run.path / "chat_outputs.jsonl", text)
        self.run.update_report(self.eval_section, metrics)
        return metrics
