"""Judges of generated glyphs that share nothing with the generator: a font classifier and a character
classifier, trained on real rendered glyphs of every font of a glyph library (genlab.data.glyphs), and the
scores built on them — font and character accuracy, FID in the character classifier's features — beside L1
and SSIM against the true glyph.

Each judge is a small CNN that reads the glyph at 32x32 (2x2 average-pooled from 64x64, which keeps every
stroke of a GB2312 level-1 character legible), trained with cross-entropy under one-cycle AdamW on glyphs
degraded at random (glyph_augment: moved, blurred, greyed; for the character judge also scaled), so that it
reads the shape of a character rather than one rendering's exact pixels.
- The character judge learns every character of every font of the library: it is a reader of real glyphs,
  and its own honesty check is a second judge trained the same way without one font (`unseen_font`), whose
  accuracy on that font's real glyphs says how well this recipe reads a style it has never seen.
- The font judge learns the training characters of every font and is measured on the held-out characters:
  it is asked about glyphs of held-out characters, so it must know a font without knowing the character.
Trained judges are cached in $GENLAB_DATA_DIR/glyphs/judges/. They train on one thread whatever the run's
count: the thread count sets the float summation order, and a judge trained on whatever cores were free at
that moment read the same generated glyphs a point or two differently from one trained on another count.
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

from genlab.core.threads import threads
from genlab.data.augment import random_affine
from genlab.data.glyphs import GlyphSet
from genlab.data.images import cache_root
from genlab.evaluation.classifier import accuracy, conv_blocks, features_and_probs, fit
from genlab.evaluation.metrics import frechet_distance
from genlab.io.files import atomic_write_text
from genlab.io.weights import load_module, save_tensors

JUDGE_SIZE = 32
UNSEEN_FONT = "lxgw-wenkai"  # left out of the honesty check's character judge (else the library's last font)
VERSION = 4  # bump when the judges' training changes: the cache key holds it


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
    info: dict[str, Any]  # the judges' accuracies on real glyphs, training seconds


def glyph_augment(x: torch.Tensor, g: torch.Generator, reshape: bool) -> torch.Tensor:
    """(B, 1, S, S) ink -> degraded copies: moved by up to 2 pixels (and, with `reshape`, scaled by up to 8 %:
    a font's size is not its characters), half of them blurred by a 3x3 mean, the ink greyed to 70-100 %.
    (Pixel flips and stroke thinning on top of these kept an 800-class judge at chance in 16 epochs.)"""
    u = torch.rand(len(x), 5, generator=g)
    x = random_affine(x, u[:, :3], 2.0, 0.08 if reshape else 0.0)
    col = u[:, :, None, None, None]  # (B, 5, 1, 1, 1): one draw per image
    x = torch.where(col[:, 3] < 0.5, F.avg_pool2d(x, 3, 1, 1, count_include_pad=False), x)
    return x * (0.7 + 0.3 * col[:, 4])


def _train(images: torch.Tensor, labels: torch.Tensor, classes: int, epochs: int, seed: int, reshape: bool):
    """A judge trained on (N, 1, S, S) glyphs and their (N,) labels; it and its training seconds."""
    torch.manual_seed(seed)
    judge = GlyphJudge(GlyphJudgeConfig(num_classes=classes))
    rng = torch.Generator().manual_seed(seed)
    seconds = fit(
        judge, images, labels, epochs, 128, 3e-3, rng,
        augment=lambda x, g: glyph_augment(x, g, reshape), desc="glyph judge", progress=False,
    )  # fmt: skip
    return judge.eval(), seconds


def _train_judges(glyphs: GlyphSet, epochs: int, seed: int) -> tuple[GlyphJudge, GlyphJudge, dict[str, Any]]:
    """The font judge (training characters), the character judge (everything) and the honesty check."""
    fonts, chars = len(glyphs.fonts), len(glyphs.chars)
    images = torch.from_numpy(glyphs.ink).reshape(fonts * chars, 1, *glyphs.ink.shape[-2:])  # (F C, 1, S, S)
    font_labels = torch.arange(fonts).repeat_interleave(chars)
    char_labels = torch.arange(chars).repeat(fonts)
    test = torch.from_numpy(glyphs.is_test).repeat(fonts)  # (F C,) held-out characters
    info: dict[str, Any] = {"fonts": glyphs.fonts, "chars": chars, "epochs": epochs, **asdict(GlyphJudgeConfig())}
    # the font judge's task is easier (ten classes): half the passes
    font, info["font_train_seconds"] = _train(
        images[~test], font_labels[~test], fonts, max(1, epochs // 2), seed, False
    )
    info["font_accuracy_held_out_chars"] = accuracy(font, images[test], font_labels[test])
    char, info["char_train_seconds"] = _train(images, char_labels, chars, epochs, seed, True)
    info["char_accuracy_real"] = {
        f: accuracy(char, images[font_labels == i], char_labels[font_labels == i]) for i, f in enumerate(glyphs.fonts)
    }
    if fonts > 1:
        unseen = glyphs.fonts.index(UNSEEN_FONT) if UNSEEN_FONT in glyphs.fonts else fonts - 1
        out = font_labels == unseen
        check, _ = _train(images[~out], char_labels[~out], chars, epochs, seed, True)
        info["unseen_font"] = glyphs.fonts[unseen]
        info["char_accuracy_unseen_font"] = accuracy(check, images[out], char_labels[out])
    return font, char, info


def glyph_judges(glyphs: GlyphSet, epochs: int, seed: int = 0) -> Judges:
    """The font and character judges of a glyph library, trained once and cached."""
    key = json.dumps([VERSION, glyphs.fonts, glyphs.chars, glyphs.ink.shape[-1], epochs, seed])
    folder = cache_root() / "glyphs" / "judges" / hashlib.sha256(key.encode()).hexdigest()[:16]
    if (folder / "info.json").is_file():
        judges = {
            "font": GlyphJudge(GlyphJudgeConfig(num_classes=len(glyphs.fonts))),
            "char": GlyphJudge(GlyphJudgeConfig(num_classes=len(glyphs.chars))),
        }
        for name, judge in judges.items():
            load_module(judge, folder / f"{name}.safetensors")
        return Judges(judges["font"].eval(), judges["char"].eval(), json.loads((folder / "info.json").read_text()))
    with threads(1):  # the same judges whatever the machine's load (module docstring)
        font, char, info = _train_judges(glyphs, epochs, seed)
    folder.mkdir(parents=True, exist_ok=True)
    save_tensors(folder / "font.safetensors", font.state_dict())
    save_tensors(folder / "char.safetensors", char.state_dict())
    atomic_write_text(folder / "info.json", json.dumps(info, indent=1))
    return Judges(font, char, info)


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
