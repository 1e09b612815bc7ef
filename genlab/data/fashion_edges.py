"""Edges -> items on Fashion-MNIST: pix2pix's edges2shoes in miniature, the quick second data set of
image-to-image translation (docs/style-transfer.md).

Each item's edge map is drawn from the item itself: Sobel gradient magnitude of the 28x28 picture in [0, 1],
thresholded at EDGE_THRESHOLD, so an edge pixel is 1 and the rest 0 (the sketch a person would draw of its
outline and seams). Both are padded to 32x32 (a U-Net halves it cleanly five times) and returned as a
GlyphSet of two "fonts": `fashion-edges` (the source) and `fashion` (the target), one "character" per item,
with the items taken from Fashion-MNIST's own test split held out.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from genlab.data.glyphs import GlyphSet
from genlab.data.image_sets import load_image_dataset

EDGES, ITEMS = "fashion-edges", "fashion"
PICTURE_SETS = {"fashion-edges": [EDGES, ITEMS]}  # data.kind -> the names its source and target go by
EDGE_THRESHOLD = 0.5  # Sobel magnitude (ink units per pixel, up to about 5.7) that counts as an edge
SOBEL = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def edge_map(items: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) pictures in [0, 1] -> (N, 1, H, W) edges in {0, 1}: Sobel magnitude over the threshold."""
    kernels = torch.stack([SOBEL, SOBEL.T])[:, None]  # (2, 1, 3, 3): d/dx, d/dy
    grad = F.conv2d(items, kernels, padding=1)  # (N, 2, H, W)
    return (grad.pow(2).sum(1, keepdim=True).sqrt() > EDGE_THRESHOLD).float()


def load_fashion_edges(count: int, test_every: int, size: int = 32) -> GlyphSet:
    """`count` Fashion-MNIST items and their edge maps, a `1 / test_every` share of them from the test split
    (held out of training): ink (2, count, size, size) float32, edges first."""
    data = load_image_dataset("fashion-mnist")
    test = count // test_every
    pictures = np.concatenate([data.train_images[: count - test], data.test_images[:test]])  # (count, 28, 28)
    items = torch.from_numpy(pictures).float().div(255).unsqueeze(1)  # (count, 1, 28, 28)
    pad = (size - items.shape[-1]) // 2
    items = F.pad(items, (pad, size - 28 - pad) * 2)  # (count, 1, size, size)
    ink = torch.stack([edge_map(items), items])[:, :, 0]  # (2, count, size, size)
    is_test = np.arange(count) >= count - test
    return GlyphSet([EDGES, ITEMS], "", ink.numpy(), is_test)
