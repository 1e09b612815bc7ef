"""A VQGAN run that trains in seconds: a narrow autoencoder with 32 codes on 256 bundled digits."""

from __future__ import annotations

from pathlib import Path

from genlab.tasks.contract import TinyRun, tiny_digits

TINY_MODEL = {"model.width": 16, "model.code_dim": 8, "model.codebook_size": 32}


def tiny_run(folder: Path) -> TinyRun:
    settings = {
        **tiny_digits(folder, 256),
        "data.name": "mnist",
        **TINY_MODEL,
        "train.adversarial_start": 2,  # the discriminator takes part from the third step
        "eval.num_samples": 100,
        "train.sample_every": 2,  # samples and quick scores once, at the end
    }
    return TinyRun.of("vqgan-fashion", settings, {"n": 4, "seed": 1}, out=folder / "recon.png")
