"""From a seed and a request to images: noise, conditions, batches, and the [-1, 1] <-> [0, 1] pixel scale.

The network and the process work on pixels in [-1, 1] (zero-centred, like the noise); users and the
evaluator see [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from genlab.errors import GenlabError
from genlab.models.unet import UNet
from genlab.tasks.flow.process import Start, sample

IMAGE_SHAPE = (1, 28, 28)
MAX_SAMPLES = 50_000  # images per call: bounds memory (the standard FID sample size)


class Sampler(nn.Module):
    """`steps` Euler steps at guidance weight w as one module: noise (B, 1, 28, 28) [and conditions: labels (B,)
    or caption embeddings (B, D)] -> images (B, 1, 28, 28) in [0, 1]. The graph `genlab export` writes."""

    def __init__(self, model: UNet, steps: int, guidance: float):
        super().__init__()
        self.model, self.steps, self.guidance = model, steps, guidance

    def forward(self, noise: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return to_pixels(sample(self.model, noise, self.steps, cond, self.guidance))


def to_model(images: torch.Tensor) -> torch.Tensor:
    return images * 2 - 1


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1) / 2).clamp(0, 1)


def check_count(n: int) -> None:
    if n < 1:
        raise GenlabError(f"--n must be at least 1, got {n}")
    if n > MAX_SAMPLES:
        raise GenlabError(
            f"--n {n} is more than the {MAX_SAMPLES:,} images one call draws; "
            "draw several batches with other --seed values"
        )


def class_labels(model: UNet, n: int, label: int | None) -> torch.Tensor | None:
    """(n,) the class of each image: `label`, or 0..K-1 in turn; None for a model without classes."""
    config = model.config
    if config.conditioning != "class":
        if label is not None:
            raise GenlabError(
                f"--label needs a class-conditional model; this one is conditioned on "
                f"'{config.conditioning}'" + (": give --prompt" if config.conditioning == "text" else "")
            )
        return None
    if label is not None and not 0 <= label < config.num_classes:
        raise GenlabError(f"--label must be in 0..{config.num_classes - 1}, got {label}")
    return torch.full((n,), label) if label is not None else torch.arange(n) % config.num_classes


def check_prompt(model: UNet, prompt: str | None) -> None:
    if prompt is not None and model.config.conditioning != "text":
        raise GenlabError(
            f"--prompt needs a text-conditioned model (model.conditioning: text); this one is "
            f"conditioned on '{model.config.conditioning}'"
        )
    if prompt is not None and not prompt.strip():
        raise GenlabError("--prompt is empty")


def downsample(images: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H/f, W/f): the mean of each f x f block (what a coarser sensor records)."""
    return F.avg_pool2d(images, factor)


def match_low_res(low_res: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """A `constrain` for the sampler: x (B, C, 28, 28) -> the nearest image whose f x f block means are
    `low_res` (B, C, 28/f, 28/f), by putting back the difference of block means (ILVR-style, Choi et al.
    2021; exact because the block mean of a nearest-neighbour upsampling is the image itself)."""
    factor = IMAGE_SHAPE[1] // low_res.shape[-1]

    def constrain(x: torch.Tensor) -> torch.Tensor:
        return x + F.interpolate(low_res - downsample(x, factor), scale_factor=factor, mode="nearest")

    return constrain


def _rows(tensor: torch.Tensor | None, i: int, j: int, device: torch.device) -> torch.Tensor | None:
    """Rows i:j of a per-image tensor (n, ...), or its only row repeated; None stays None."""
    if tensor is None:
        return None
    return (tensor if len(tensor) == 1 else tensor[i:j]).expand(j - i, *tensor.shape[1:]).to(device)


@torch.no_grad()
def draw(
    model: UNet,
    n: int,
    seed: int,
    cond: torch.Tensor | None,
    steps: int,
    guidance: float,
    start: Start | None = None,
    batch_size: int = 1000,
    low_res: torch.Tensor | None = None,
) -> torch.Tensor:
    """n images (n, 1, 28, 28) in [0, 1]. cond: (n,) labels, (n, D) text embeddings or None.
    start: an image-to-image start in model scale, with (n, ...) or (1, ...) tensors.
    low_res: (n or 1, 1, 28/f, 28/f) in model scale: super-resolve it (every sample keeps its block means)."""
    check_count(n)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    noise = torch.randn(n, *IMAGE_SHAPE, generator=torch.Generator().manual_seed(seed))  # (n, 1, 28, 28)
    images = torch.empty(n, *IMAGE_SHAPE)
    for i in range(0, n, batch_size):
        j = min(n, i + batch_size)
        chunk_start = None
        if start is not None:
            chunk_start = Start(_rows(start.image, i, j, device), start.strength, _rows(start.mask, i, j, device))
        constrain = None if low_res is None else match_low_res(_rows(low_res, i, j, device))
        x = sample(model, noise[i:j].to(device), steps, _rows(cond, i, j, device), guidance, chunk_start, constrain)
        images[i:j] = to_pixels(x).cpu()
    model.train(was_training)
    return images
