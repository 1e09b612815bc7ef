"""A small LSTM language model: folk-rnn's shape (an embedding, stacked LSTM layers, a softmax over the next
token), scaled down to a CPU budget; the baseline the folk-tune transformer is compared with."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LSTMConfig:
    vocab_size: int = 128
    n_embd: int = 64
    hidden: int = 160  # with 64-dim embeddings: about the folk transformer's weight count
    n_layer: int = 2
    dropout: float = 0.1


class LSTMLanguageModel(nn.Module):
    def __init__(self, config: LSTMConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.lstm = nn.LSTM(config.n_embd, config.hidden, config.n_layer, batch_first=True, dropout=config.dropout)
        self.head = nn.Linear(config.hidden, config.vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> next-token logits (B, T, V)."""
        hidden, _ = self.lstm(self.embed(ids))  # (B, T, H)
        return self.head(hidden)
