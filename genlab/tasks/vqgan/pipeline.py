"""From images to tokens and back in batches, and the originals-beside-reconstructions layout."""

from __future__ import annotations

import torch

from genlab.models.vqgan import VQGAN


@torch.no_grad()
def tokenize(model: VQGAN, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """images (N, 1, 28, 28) in [0, 1] -> token ids (N, 49), batch by batch, on the model's device."""
    device = next(model.parameters()).device
    parts = [model.encode(images[i : i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(parts) if parts else torch.zeros(0, model.config.tokens, dtype=torch.long)


@torch.no_grad()
def detokenize(model: VQGAN, ids: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """token ids (N, 49) -> images (N, 1, 28, 28) in [0, 1] on the CPU."""
    device = next(model.parameters()).device
    parts = [model.decode(ids[i : i + batch_size].to(device)).cpu() for i in range(0, len(ids), batch_size)]
    return torch.cat(parts)


def reconstruct(model: VQGAN, images: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """images (N, 1, 28, 28) -> (their reconstructions (N, 1, 28, 28), their token ids (N, 49)),
    through the tokens, as a transformer's output would be decoded."""
    ids = tokenize(model, images, batch_size)
    return detokenize(model, ids, batch_size), ids


def side_by_side(originals: torch.Tensor, reconstructions: torch.Tensor, cols: int) -> torch.Tensor:
    """(N, 1, H, W) twice -> (2N', 1, H, W) in rows of `cols`: a row of originals, then their
    reconstructions below, and so on (N' = N rounded down to whole rows, at least one row)."""
    rows = max(1, len(originals) // cols)
    n = min(len(originals), rows * cols)
    a = originals[:n].reshape(-1, cols, *originals.shape[1:])
    b = reconstructions[:n].reshape(-1, cols, *originals.shape[1:])
    return torch.stack([a, b], dim=1).reshape(-1, *originals.shape[1:])
