"""Building, loading and running a glyph translator: shared by its training, its handle and few-shot starts.

A LoRA run keeps what it trained — the kernels' low-rank factors and the style vectors, a few tens of KB —
in RUN/adapter/ with its start run's path and a fingerprint of the frozen start (genlab.peft.methods'
delta format), and is opened by putting that delta back on its start (`load_lora_generator`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from genlab.core.checkpoint import load_weights, open_run_checkpoint
from genlab.core.recipe import from_dict
from genlab.core.run import RunDir
from genlab.data.fashion_edges import load_fashion_edges
from genlab.data.glyphs import GlyphSet, load_glyphs
from genlab.errors import GenlabError
from genlab.io.files import read_json
from genlab.models.glyph_unet import GlyphUNet, GlyphUNetConfig
from genlab.models.patchgan import PatchGAN, PatchGANConfig
from genlab.peft.conv_lora import apply_conv_lora, merge_conv_lora
from genlab.peft.methods import DELTA_CONFIG, load_delta, save_delta

SAMPLE_CHARS = 8  # held-out characters per font in the period grids
SAMPLE_FONTS = 4  # at most this many target fonts in them


def load_library(data: Any) -> GlyphSet:
    """The pictures a run's `data` section (GlyphDataConfig) names: its fonts' glyphs, or Fashion-MNIST items
    and their edge maps as two "fonts" (one "character" per item)."""
    if data.kind == "fashion-edges":
        return load_fashion_edges(data.num_chars, data.test_every, data.size)
    return load_glyphs(data.fonts, data.num_chars, data.size, data.test_every)


def build_pair(meta: dict[str, Any]) -> tuple[GlyphUNet, PatchGAN]:
    """The generator and discriminator a checkpoint's meta describes (LoRA-parametrised where it says)."""
    config = from_dict(GlyphUNetConfig, meta["model"])
    generator = GlyphUNet(config)
    lora = meta.get("lora")
    if lora:
        apply_conv_lora(generator, lora["rank"], lora["alpha"])
    return generator, PatchGAN(from_dict(PatchGANConfig, meta["discriminator"]))


def load_pair(run: RunDir, which: str = "last", live: bool = False) -> tuple[GlyphUNet, PatchGAN, dict[str, Any]]:
    """A pix2pix run's generator (LoRA merged into its kernels) and discriminator, and its meta. The generator
    is the one the run draws with (its weights' moving average, where it kept one), or with `live` the
    weights as last trained."""
    folder, meta = open_run_checkpoint(run, which, "pix2pix")
    generator, discriminator = build_pair(meta)
    drawing = "generator" if live else meta.get("sampler", "generator")
    load_weights(folder, {drawing: generator, "discriminator": discriminator}, meta)
    return merge_conv_lora(generator).eval(), discriminator.eval(), meta


def start_from(init: str, targets: list[str]) -> tuple[GlyphUNet, PatchGAN]:
    """The networks of the run `init` grown to draw `targets` too (its own fonts first, then the new ones)."""
    start = RunDir(Path(init))
    if not (start.path / "config.yaml").is_file():
        raise GenlabError(f"train.init {start.path}: not a run directory (no config.yaml)")
    generator, discriminator, _ = load_pair(start)
    fonts = generator.config.fonts + [f for f in targets if f not in generator.config.fonts]
    return grow_fonts(generator, discriminator, fonts)


def with_lora(generator: GlyphUNet, rank: int, alpha: float) -> GlyphUNet:
    """Freeze the generator, give every convolution a rank-`rank` kernel update and let the style vectors train."""
    apply_conv_lora(generator, rank, alpha)
    generator.style.requires_grad_(True)
    return generator


def save_lora_delta(generator: GlyphUNet, folder: Path, init: str, lora: dict[str, Any]) -> Path:
    """The trained tensors of a LoRA generator (factors, style vectors) and the start run they go on."""
    return save_delta(generator, folder, {"method": "lora", **lora, "init": init, "fonts": generator.config.fonts})


def load_lora_generator(folder: Path) -> GlyphUNet:
    """A LoRA run's generator rebuilt as shipped: its start run's generator, grown to the delta's fonts,
    LoRA-parametrised, the delta put back (refused if the start changed since), the updates merged."""
    meta = read_json(folder / DELTA_CONFIG, "LoRA delta description")
    if not isinstance(meta, dict) or not {"init", "fonts", "rank", "alpha"} <= set(meta):
        raise GenlabError(f"{folder / DELTA_CONFIG} does not describe a pix2pix LoRA delta")
    generator, _ = start_from(meta["init"], meta["fonts"])
    load_delta(with_lora(generator, meta["rank"], meta["alpha"]), folder)
    return merge_conv_lora(generator).eval()


def grow_fonts(generator: GlyphUNet, discriminator: PatchGAN, fonts: list[str]) -> tuple[GlyphUNet, PatchGAN]:
    """The same networks for a longer font list (the trained fonts first): the new fonts' style vectors and
    font-head rows start at the mean of the trained ones."""
    old = generator.config.fonts
    if fonts[: len(old)] != old:
        raise GenlabError(f"a start's fonts ({', '.join(old)}) must come first")
    new_g = GlyphUNet(dataclasses.replace(generator.config, fonts=fonts))
    new_d = PatchGAN(dataclasses.replace(discriminator.config, num_fonts=len(fonts)))
    state_g, state_d = generator.state_dict(), discriminator.state_dict()
    with torch.no_grad():
        state_g["style.weight"] = _grow(state_g["style.weight"], len(fonts))
        state_d["font.weight"] = _grow(state_d["font.weight"], len(fonts))
        state_d["font.bias"] = _grow(state_d["font.bias"], len(fonts))
    new_g.load_state_dict(state_g)
    new_d.load_state_dict(state_d)
    return new_g, new_d


def _grow(rows: torch.Tensor, count: int) -> torch.Tensor:
    extra = rows.mean(dim=0, keepdim=True).expand(count - len(rows), *rows.shape[1:])
    return torch.cat([rows, extra])


@torch.no_grad()
def translate(generator: GlyphUNet, sources: torch.Tensor, fonts: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Source glyphs (N, 1, S, S) ink -> glyphs (N, 1, S, S) ink in the fonts (N,) asked for."""
    generator.eval()
    parts = [
        generator(sources[i : i + batch_size], fonts[i : i + batch_size]) for i in range(0, len(sources), batch_size)
    ]
    return torch.cat(parts) if parts else sources[:0]


def sample_grid(generator: GlyphUNet, glyphs: GlyphSet, source: str) -> tuple[torch.Tensor, int]:
    """Held-out characters as pictures (black ink on white) for a grid: per target font a row of the
    source glyphs, one of the generated ones and one of the true ones; and the grid's row length."""
    chars = glyphs.split("test")[:SAMPLE_CHARS]
    src = torch.from_numpy(glyphs.ink[glyphs.index(source), chars]).unsqueeze(1)  # (n, 1, S, S)
    rows = []
    for font_id, font in enumerate(generator.config.fonts[:SAMPLE_FONTS]):
        truth = torch.from_numpy(glyphs.ink[glyphs.index(font), chars]).unsqueeze(1)
        made = translate(generator, src, torch.full((len(chars),), font_id))
        rows += [src, made, truth]
    return 1 - torch.cat(rows), len(chars)
