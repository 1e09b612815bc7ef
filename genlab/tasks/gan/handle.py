"""A GAN run opened for use: its generator (last or best checkpoint), sampling and scoring."""

from __future__ import annotations

from typing import Any

from genlab.core.checkpoint import load_network
from genlab.core.run import CostMeter, RunDir
from genlab.data import image_class_names, load_image_dataset
from genlab.evaluation.classifier import load_evaluator
from genlab.evaluation.image_eval import evaluate_samples
from genlab.interop.onnx import ExportGraph, generator_graph
from genlab.io.images import GeneratedImages
from genlab.models.gan import GANConfig, build_gan, sample_images, sample_together
from genlab.tasks.contract import ImageGeneratorRun
from genlab.tasks.gan.recipe import GanRecipe

EVAL_SEED = 1234  # the noise of `evaluate`, so that two evaluations of one checkpoint agree
IMAGES_MEAN = "greyscale images (batch, 1, 28, 28) in [0, 1]"  # the exported generator's output


class GanRun(ImageGeneratorRun):
    def __init__(self, run: RunDir, recipe: GanRecipe, checkpoint: str = "last"):
        super().__init__(run, recipe, checkpoint)
        self.config, self.generator, *_ = load_network(
            run, checkpoint, "gan", GANConfig, lambda config: build_gan(config)[0], "generator"
        )

    def generate(self, n: int = 64, label: int | None = None, seed: int = 0) -> GeneratedImages:
        """n images (n, 1, 28, 28) in [0, 1]; `label` picks the class of a conditional model (else all
        classes in turn)."""
        images, labels = sample_images(self.generator, n, seed, label)
        return GeneratedImages(images, labels, nrow=self.config.num_classes or None)

    def export_graph(self) -> ExportGraph:
        """The generator: noise z (and labels, if conditional) -> images in [0, 1]."""
        return generator_graph(self.generator, self.config.latent_dim, self.class_names, "images", IMAGES_MEAN)

    @property
    def class_names(self) -> list[str]:
        return image_class_names(self.recipe.data.name, self.config.num_classes)

    def generate_images(self, requests: list[dict[str, Any]]) -> list[GeneratedImages]:
        """Several `generate(n, label, seed)` calls in one forward pass of the generator."""
        drawn = sample_together(self.generator, [(r.get("n", 64), r.get("seed", 0), r.get("label")) for r in requests])
        return [GeneratedImages(images, labels, nrow=self.config.num_classes or None) for images, labels in drawn]

    def evaluate(self, n: int | None = None) -> dict[str, Any]:
        """FID, precision/recall, Inception-style score and class histogram of n samples (default
        eval.num_samples) against the held-out test split; written to report.json as `quality`."""
        recipe = self.recipe
        n = recipe.eval.num_samples if n is None else n
        data = load_image_dataset(recipe.data.name, recipe.data.path)
        evaluator = load_evaluator(recipe.data.name)
        meter = CostMeter()
        images, labels = sample_images(self.generator, n, EVAL_SEED, batch_size=recipe.eval.batch_size)
        metrics = evaluate_samples(images, data, evaluator, requested_labels=labels, batch_size=recipe.eval.batch_size)
        metrics["checkpoint"] = self.checkpoint
        metrics["eval_seconds"] = meter.snapshot()["wall_seconds"]
        self.run.update_report(self.eval_section, metrics)
        return metrics
