"""Judges of generated glyphs that share nothing with the generator: a font classifier and a character
classifier, trained on real rendered glyphs of every font of a glyph library (genlab.data.glyphs), and the
scores built on them — font and character accuracy, FID in the character classifier's features — beside L1
and SSIM against the true glyph.

Each judge is a small CNN that reads the glyph at 32x32 (2x2 average-pooled from 64x64, which keeps every
stroke of a GB2312 level-1 character legible), trained with cross-entropy under one-cycle AdamW and random
shifts of up to 2 pixels (evaluation.classifier.fit). A tenth of the (font, character) pairs is held out of
the judges' training to measure them. Trained judges are cached in $GENLAB_DATA_DIR/glyphs/judges/.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genlab.data.augment import random_shift
from genlab.data.glyphs import GlyphSet
from genlab.data.images import cache_root
from genlab.evaluation.classifier import accuracy, conv_blocks, features_and_probs, fit
from genlab.evaluation.metrics import frechet_distance
from genlab.io.files import atomic_write_text
from genlab.io.weights import load_module, save_tensors

JUDGE_SIZE = 32
HELD_OUT_SHARE = 0.1
VERSION = 1  # bump when the judges' training changes: the cache key holds it


@dataclass
class GlyphJudgeConfig:
    channels: tuple[int, int, int] = (32, 64, 128)
    feature_dim: int = 256
    num_classes: int = 10
    dropout: float = 0.2


class GlyphJudge(nn.Module):
    """(B, 1, S, S) ink in [0, 1] -> pooled to 32x32 -> three conv blocks (32 -> 16 -> 8 -> 4) -> features
    (B, feature_dim) -> logits (B, num_classes)."""

    def __init__(self, config: GlyphJudgeConfig):
        super().__init__()
        self.config = config
        self.conv = nn.Sequential(*conv_blocks(config.channels), nn.Flatten())
        self.embed = nn.Sequential(nn.Linear(config.channels[-1] * 4 * 4, config.feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.feature_dim, config.num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.conv(F.adaptive_avg_pool2d(x, JUDGE_SIZE)))  # (B, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass
class Judges:
    font: GlyphJudge  # classes: the library's fonts, in GlyphSet order
    char: GlyphJudge  # classes: the library's characters, in GlyphSet order
    info: dict[str, Any]  # held-out accuracies, training seconds


def _train(
    images: torch.Tensor, labels: torch.Tensor, held_out: torch.Tensor, classes: int, epochs: int, seed: int
) -> tuple[GlyphJudge, float, float]:
    """A judge trained on the (N, 1, S, S) glyphs outside `held_out` (N,) bool: it, its accuracy on the held-out
    ones, its training seconds."""
    torch.manual_seed(seed)
    judge = GlyphJudge(GlyphJudgeConfig(num_classes=classes))
    rng = torch.Generator().manual_seed(seed)
    seconds = fit(
        judge, images[~held_out], labels[~held_out], epochs, 128, 3e-3, rng,
        augment=lambda x, g: random_shift(x, 2, g), desc="glyph judge", progress=False,
    )  # fmt: skip
    return judge.eval(), accuracy(judge, images[held_out], labels[held_out]), seconds


def glyph_judges(glyphs: GlyphSet, epochs: int, seed: int = 0) -> Judges:
    """The font and character judges of a glyph library, trained once and cached."""
    key = json.dumps([VERSION, glyphs.fonts, glyphs.chars, glyphs.ink.shape[-1], epochs, seed])
    folder = cache_root() / "glyphs" / "judges" / hashlib.sha256(key.encode()).hexdigest()[:16]
    fonts, chars = len(glyphs.fonts), len(glyphs.chars)
    judges = {
        "font": GlyphJudge(GlyphJudgeConfig(num_classes=fonts)),
        "char": GlyphJudge(GlyphJudgeConfig(num_classes=chars)),
    }
    if (folder / "info.json").is_file():
        for name, judge in judges.items():
            load_module(judge, folder / f"{name}.safetensors")
        return Judges(judges["font"].eval(), judges["char"].eval(), json.loads((folder / "info.json").read_text()))
    images = torch.from_numpy(glyphs.ink).reshape(fonts * chars, 1, *glyphs.ink.shape[-2:])  # (F C, 1, S, S)
    font_labels = torch.arange(fonts).repeat_interleave(chars)
    char_labels = torch.arange(chars).repeat(fonts)
    held_out = torch.rand(len(images), generator=torch.Generator().manual_seed(seed)) < HELD_OUT_SHARE
    info: dict[str, Any] = {"fonts": glyphs.fonts, "chars": chars, "epochs": epochs, **asdict(GlyphJudgeConfig())}
    for name, labels, classes in (("font", font_labels, fonts), ("char", char_labels, chars)):
        judge, acc, seconds = _train(images, labels, held_out, classes, epochs, seed)
        judges[name] = judge
        info[f"{name}_held_out_accuracy"], info[f"{name}_train_seconds"] = acc, seconds
        folder.mkdir(parents=True, exist_ok=True)
        save_tensors(folder / f"{name}.safetensors", judge.state_dict())
    atomic_write_text(folder / "info.json", json.dumps(info, indent=1))
    return Judges(judges["font"], judges["char"], info)


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) of each pair of (N, 1, H, W) images in [0, 1]: an 11x11
    Gaussian window of sigma 1.5, C1 = 0.01^2, C2 = 0.03^2, averaged over each image -> (N,)."""
    x = torch.arange(11, dtype=torch.float32) - 5
    g = torch.exp(-(x**2) / (2 * 1.5**2))
    window = (g[:, None] * g[None, :] / g.sum() ** 2)[None, None]  # (1, 1, 11, 11)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


@torch.no_grad()
def score_glyphs(
    made: torch.Tensor, truth: torch.Tensor, font_labels: torch.Tensor, char_labels: torch.Tensor, judges: Judges
) -> dict[str, float]:
    """Glyphs made (N, 1, S, S) ink against the true ones, the fonts (N,) and characters (N,) asked for:
    mean L1 and SSIM (on black-on-white pictures), the judges' accuracies (the character judge's also within its
    five likeliest), FID in the character judge's features (made vs true)."""
    made_feats, made_char = features_and_probs(judges.char, made)
    true_feats, _ = features_and_probs(judges.char, truth)
    _, made_font = features_and_probs(judges.font, made)
    return {
        "l1": (made - truth).abs().mean().item(),
        "ssim": ssim(1 - made, 1 - truth).mean().item(),
        "font_accuracy": float(np.mean(made_font.argmax(1) == font_labels.numpy())),
        "char_accuracy": float(np.mean(made_char.argmax(1) == char_labels.numpy())),
        "char_top5_accuracy": float(
            np.mean((np.argsort(-made_char, axis=1)[:, :5] == char_labels.numpy()[:, None]).any(1))
        ),
        "fid": frechet_distance(made_feats, true_feats),
    }
