"""A VQGAN run opened for use: images -> tokens -> images, and how well that round trip keeps them."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genlab.core.checkpoint import load_network
from genlab.core.run import CostMeter, RunDir
from genlab.data import image_class_names, load_image_dataset
from genlab.errors import GenlabError
from genlab.evaluation.classifier import evaluator_or_none
from genlab.evaluation.image_eval import evaluate_samples
from genlab.interop.onnx import ExportGraph
from genlab.io.images import GeneratedImages
from genlab.models.vqgan import VQGAN, TokenDecoder, VQGANConfig
from genlab.tasks.contract import ImageGeneratorRun
from genlab.tasks.flow.inputs import open_image, read_image
from genlab.tasks.flow.pipeline import check_count
from genlab.tasks.vqgan.pipeline import reconstruct, side_by_side
from genlab.tasks.vqgan.process import code_usage, psnr
from genlab.tasks.vqgan.recipe import VQGANRecipe


def read_input(path: str, config: VQGANConfig) -> torch.Tensor:
    """An image file for a model of `config` -> (1, C, S, S) in [0, 1]; another size or mode is one line."""
    side = config.image_size
    if config.channels == 1:
        return read_image(path, "--input", (side,))
    image = open_image(path, "--input")
    if image.mode not in ("RGB", "RGBA") or image.size != (side, side):
        width, height = image.size
        raise GenlabError(f"--input {path}: a {width}x{height} {image.mode} image; the model reads {side}x{side} RGB")
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255  # (S, S, 3)
    return torch.from_numpy(pixels).permute(2, 0, 1)[None]


class VQGANRun(ImageGeneratorRun):
    eval_section = "reconstruction"

    def __init__(self, run: RunDir, recipe: VQGANRecipe, checkpoint: str = "last"):
        super().__init__(run, recipe, checkpoint)
        self.config, self.model, *_ = load_network(run, checkpoint, "vqgan", VQGANConfig, VQGAN, "model")

    @property
    def class_names(self) -> list[str]:
        return image_class_names(self.recipe.data.name)

    def held_out(self, n: int, label: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n test-split images (n, C, S, S) in [0, 1] picked by `seed` (of class `label`) and their labels."""
        data = load_image_dataset(self.recipe.data.name, self.recipe.data.path)
        images, labels = data.tensors("test")
        if label is not None:
            if not 0 <= label < data.num_classes:
                raise GenlabError(f"--label must be in 0..{data.num_classes - 1}, got {label}")
            images, labels = images[labels == label], labels[labels == label]
        if n > len(images):
            raise GenlabError(f"--n {n}: the test split has {len(images)} such images")
        pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
        return images[pick], labels[pick]

    def generate(
        self, n: int = 16, label: int | None = None, seed: int = 0, input: str | None = None
    ) -> GeneratedImages:
        """`input` (an image file of the model's size and mode: 28x28 greyscale for Fashion-MNIST, 32x32
        colour for emoji) -> its reconstruction through the tokens. Without one: n held-out test images (of
        class `label`, picked by `seed`) in a row above their reconstructions, rows of at most 16 (2n images).

        Args:
            input: an image file of the model's size and mode to reconstruct through the tokens
        """
        if input is not None:
            image = read_input(input, self.config)  # (1, C, S, S); another size or mode is one line
            return GeneratedImages(reconstruct(self.model, image)[0], None)
        check_count(n)
        originals, labels = self.held_out(n, label, seed)
        recon, _ = reconstruct(self.model, originals)
        cols = min(n, 16)
        shown = side_by_side(originals, recon, cols) if n % cols == 0 else torch.cat([originals, recon])
        return GeneratedImages(shown, None, nrow=cols)

    def export_graph(self) -> ExportGraph:
        """The decoder: token ids (batch, g*g) -> images (batch, C, S, S) in [0, 1]."""
        cfg = self.config

        def example(batch: int) -> dict[str, torch.Tensor]:
            rng = torch.Generator().manual_seed(batch)
            return {"token_ids": torch.randint(0, cfg.codebook_size, (batch, cfg.tokens), generator=rng)}

        notes = {
            "token_ids": f"codebook ids 0..{cfg.codebook_size - 1}, a {cfg.grid}x{cfg.grid} grid in row-major order",
            "images": f"images (batch, {cfg.channels}, {cfg.image_size}, {cfg.image_size}) in [0, 1]",
        }
        return ExportGraph(TokenDecoder(self.model), example, "images", notes=notes)

    def evaluate(self, n: int | None = None) -> dict[str, Any]:
        """Reconstruct n held-out test images (default eval.num_samples, at most the split): PSNR (dB),
        FID / precision / recall of the reconstructions against the test split (genlab's evaluator), the
        share of codebook entries the held-out tokens use, their perplexity and the per-code counts.
        Written to report.json as `reconstruction`."""
        recipe = self.recipe
        data = load_image_dataset(recipe.data.name, recipe.data.path)
        images, _ = data.tensors("test")
        n = min(len(images), recipe.eval.num_samples if n is None else n)
        check_count(n)
        meter = CostMeter()
        recon, ids = reconstruct(self.model, images[:n], recipe.eval.batch_size)
        evaluator = evaluator_or_none(data.name)  # none for emoji: no FID, PSNR and codebook use only
        batch = recipe.eval.batch_size
        quality = {} if evaluator is None else evaluate_samples(recon, data, evaluator, batch_size=batch)
        usage = code_usage(ids, self.config.codebook_size)
        metrics = {
            "psnr_db": float(psnr(recon, images[:n]).mean()),
            **{k: quality[k] for k in ("fid", "precision", "recall") if k in quality},
            "codebook_use": usage["codebook_use"],
            "perplexity": usage["perplexity"],
            "codebook_size": self.config.codebook_size,
            "code_counts": usage["counts"],
            "num_images": n,
            "checkpoint": self.checkpoint,
            "eval_seconds": meter.snapshot()["wall_seconds"],
        }
        self.run.update_report(self.eval_section, metrics)
        return metrics
