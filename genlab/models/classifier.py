"""Sequence classification: a pretrained transformer plus a task adaptation layer (the essay's
"task head").

The head reads one vector per sequence: the mean of the encoder's hidden states over the real
tokens for a bidirectional (BERT) model, as sentence encoders such as MiniLM were trained to give,
or the state of the last real token for a causal (GPT) model, the only position that has seen the
whole text. The head lives outside the backbone, so LoRA, adapters and freezing act on the backbone
while the head always trains.
"""

from __future__ import annotations

import torch
from torch import nn

from genlab.models.transformer import Transformer


class SequenceClassifier(nn.Module):
    def __init__(self, backbone: Transformer, num_labels: int, dropout: float = 0.1):
        super().__init__()
        backbone.mlm_head = None  # BERT's word-prediction head plays no part in classification
        self.backbone = backbone
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(backbone.config.n_embd, num_labels)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def pooled(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """ids, attention_mask (B, T), right-padded -> one vector per sequence (B, C)."""
        causal = self.backbone.config.causal
        # Right padding never reaches a real token of a causal model, so it needs no mask at all.
        h = self.backbone(
            ids, attention_mask=None if causal else attention_mask, compute_logits=False
        ).hidden_states  # (B, T, C)
        if causal:
            last = attention_mask.sum(dim=1) - 1  # (B,) index of the last real token
            return h[torch.arange(ids.size(0), device=ids.device), last]
        weights = attention_mask.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        return (h * weights).sum(dim=1) / weights.sum(dim=1)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.pooled(ids, attention_mask)))  # (B, num_labels) logits
