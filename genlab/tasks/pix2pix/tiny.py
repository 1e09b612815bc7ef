"""A glyph-translation run that trains in seconds: 48 characters at 32x32, one source and two target fonts."""

from __future__ import annotations

from pathlib import Path

from genlab.tasks.contract import TinyRun

TINY_FONTS = "[wqy-microhei,arphic-ukai,arphic-uming]"


def tiny_run(folder: Path) -> TinyRun:
    settings = {
        "data.fonts": TINY_FONTS,
        "data.targets": "[arphic-ukai,arphic-uming]",
        "data.num_chars": 48,
        "data.size": 32,
        "data.batch_size": 16,
        "model.width": 8,
        "model.depth": 3,
        "model.style_dim": 8,
        "discriminator.width": 8,
        "discriminator.depth": 2,
        "train.epochs": 2,
        "train.ema_decay": 0.9,
        "eval.judge_epochs": 1,
    }
    return TinyRun.of("zi2zi-fonts", settings, {"text": "生成", "font": "arphic-uming"}, out=folder / "line.png")
