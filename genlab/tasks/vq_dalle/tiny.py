"""A token-transformer run that trains in seconds: a 2-layer transformer on 256 bundled digits, tokenized
by a tiny VQGAN whose codebook is only k-means-initialised (no training: the contract needs tokens, not
good ones)."""

from __future__ import annotations

from pathlib import Path

import torch

from genlab.core.checkpoint import save_checkpoint
from genlab.core.recipe import from_dict, recipe_to_dict
from genlab.core.run import RunDir
from genlab.core.training import weights_meta
from genlab.data import load_image_dataset
from genlab.models.vqgan import VQGAN
from genlab.tasks.contract import TinyRun, tiny_digits
from genlab.tasks.vqgan.recipe import VQGANRecipe

TINY_VQGAN = {"width": 16, "code_dim": 8, "codebook_size": 32}


def write_tiny_tokenizer(folder: Path, data_path: str | Path, seed: int = 0) -> Path:
    """A VQGAN run directory at `folder` (config.yaml, checkpoints/last) over MNIST digits at `data_path`."""
    recipe = from_dict(
        VQGANRecipe,
        {"name": "tiny-vqgan", "data": {"name": "mnist", "path": str(data_path)}, "model": TINY_VQGAN},
    )
    torch.manual_seed(seed)
    model = VQGAN(recipe.model)
    images, _ = load_image_dataset("mnist", str(data_path)).tensors("train", 64)
    model(images)  # one training-mode pass: the codebook's k-means initialisation from these 64 images
    run = RunDir(folder)
    run.create(recipe_to_dict(recipe))
    save_checkpoint(
        run.checkpoint_dir, {"model": model.eval()}, {}, weights_meta("vqgan", recipe.model, dataset="mnist")
    )
    return folder


def tiny_run(folder: Path) -> TinyRun:
    digits = tiny_digits(folder, 256)
    settings = {
        **digits,
        "data.name": "mnist",
        "data.tokenizer": write_tiny_tokenizer(folder / "tokenizer", digits["data.path"]),
        "model.n_layer": 2,
        "model.n_embd": 32,
        "train.warmup_steps": 2,
        "train.sample_every": 2,  # samples and quick scores once, at the end
        "eval.num_samples": 100,
        "eval.caption_samples": 50,
    }
    return TinyRun.of(
        "vq-dalle-fashion", settings, {"n": 4, "seed": 1, "prompt": "the digit seven"}, out=folder / "samples.png"
    )
