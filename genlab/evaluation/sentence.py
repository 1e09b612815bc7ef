"""A sentence encoder: the offline MiniLM (all-MiniLM-L6-v2) read as one unit-length vector per text, the
way sentence-transformers uses it (mean of the last hidden states over the real tokens, then L2-normalised).

Zero-shot classification compares these vectors with label descriptions (genlab.evaluation.zeroshot);
few-shot learning fits a logistic regression on them, frozen or after a SetFit-style contrastive fine-tune
(genlab.evaluation.fewshot). `embed` also says what each text cost, so every few-shot point has a price.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from genlab.interop.hf import load_hf_bert, minilm_path
from genlab.io.tokenizers import Tokenizer, load_tokenizer
from genlab.models.transformer import Transformer


@dataclass
class Embedded:
    vectors: torch.Tensor  # (N, C), unit length
    flops: list[float]  # per text: its share of its batch's forward FLOPs (torch's FLOP counter)
    seconds: list[float]  # per text: its share of its batch's wall time


class SentenceEncoder:
    def __init__(self, backbone: Transformer, tokenizer: Tokenizer, max_tokens: int = 64):
        backbone.mlm_head = None  # the word-prediction head plays no part in sentence vectors
        self.backbone, self.tokenizer, self.max_tokens = backbone, tokenizer, max_tokens
        self.pad_id = tokenizer.token_id("[PAD]") or 0

    @classmethod
    def minilm(cls, max_tokens: int = 64) -> SentenceEncoder:
        folder = minilm_path()
        return cls(load_hf_bert(folder), load_tokenizer(folder), max_tokens)

    def batch(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """-> ids, attention mask (B, T), right-padded; texts cut to max_tokens tokens."""
        ids = [self.tokenizer.encode(t)[: self.max_tokens] or [self.pad_id] for t in texts]
        width = max(len(i) for i in ids)
        out = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros(len(ids), width, dtype=torch.long)
        for row, i in enumerate(ids):
            out[row, : len(i)], mask[row, : len(i)] = torch.tensor(i), 1
        return out, mask

    def forward(self, texts: list[str]) -> torch.Tensor:
        """texts -> (B, C) unit vectors, differentiable (for contrastive fine-tuning)."""
        ids, mask = self.batch(texts)
        h = self.backbone(ids, attention_mask=mask, compute_logits=False).hidden_states  # (B, T, C)
        weights = mask.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        return F.normalize((h * weights).sum(dim=1) / weights.sum(dim=1), dim=-1)

    @torch.no_grad()
    def embed(self, texts: list[str], batch_size: int = 64) -> Embedded:
        """Batches of similar length (less padding); vectors come back in the order of `texts`."""
        self.backbone.eval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = torch.zeros(len(texts), self.backbone.config.n_embd)
        flops, seconds = [0.0] * len(texts), [0.0] * len(texts)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            began = time.perf_counter()
            with FlopCounterMode(display=False) as counter:
                vectors[rows] = self.forward([texts[i] for i in rows])
            took = time.perf_counter() - began
            for i in rows:
                flops[i], seconds[i] = counter.get_total_flops() / len(rows), took / len(rows)
        return Embedded(vectors, flops, seconds)
