"""A flow run opened for use: its EMA U-Net (last or best checkpoint), sampling, editing and scoring."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from genlab.core.checkpoint import load_network
from genlab.core.run import CostMeter, RunDir
from genlab.data import ImageData, image_class_names, load_image_dataset
from genlab.errors import GenlabError
from genlab.evaluation.classifier import ImageClassifier, load_evaluator
from genlab.evaluation.image_eval import evaluate_samples
from genlab.interop.onnx import ExportGraph
from genlab.io.images import GeneratedImages
from genlab.models.unet import UNet, UNetConfig
from genlab.tasks.contract import ImageGeneratorRun
from genlab.tasks.flow.inputs import read_image, read_low_res, read_mask
from genlab.tasks.flow.pipeline import (
    IMAGE_SHAPE,
    Sampler,
    check_count,
    check_prompt,
    class_labels,
    draw,
    to_model,
)
from genlab.tasks.flow.process import Start, evaluations_per_sample
from genlab.tasks.flow.recipe import FlowRecipe
from genlab.tasks.flow.text import CaptionBank, caption_encoder

EVAL_SEED = 1234  # the noise of `evaluate`, so that two evaluations of one checkpoint agree


class FlowRun(ImageGeneratorRun):
    def __init__(self, run: RunDir, recipe: FlowRecipe, checkpoint: str = "last"):
        super().__init__(run, recipe, checkpoint)
        self.config, self.model, *_ = load_network(run, checkpoint, "flow", UNetConfig, UNet, "model")
        # A text-conditioned model reads prompts through the same frozen MiniLM it was trained with.
        self.encoder = caption_encoder() if self.config.conditioning == "text" else None
        self._captions: dict[bool, CaptionBank] = {}

    def captions(self, held_out: bool) -> CaptionBank:
        """The training (or held-out) captions of the run's dataset, embedded once per handle."""
        if held_out not in self._captions:
            self._captions[held_out] = CaptionBank.of(self.recipe.data.name, held_out, self.encoder)
        return self._captions[held_out]

    def conditions(
        self, n: int, label: int | None = None, prompt: str | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Conditions for n images (labels, caption embeddings or None) and the class each should show:
        `label` or `prompt` for all n, else the classes in turn (a text model: their training captions)."""
        check_prompt(self.model, prompt)
        labels = class_labels(self.model, n, label)
        if self.encoder is None:
            return labels, labels
        if prompt is not None:
            return self.encoder.embed([prompt]).vectors.expand(n, -1), None
        labels, embeddings = self.captions(held_out=False).cycle(n)
        return embeddings, labels

    def export_graph(self, steps: int | None = None, guidance: float | None = None) -> ExportGraph:
        """The whole sampler, unrolled at `steps` Euler steps with guidance weight `guidance` (default the
        recipe's sample.steps and sample.guidance): noise [and labels or caption embeddings] -> images."""
        steps, guidance = self._settings(steps, guidance)
        config = self.model.config

        def example(batch: int) -> dict[str, torch.Tensor]:
            rng = torch.Generator().manual_seed(batch)
            inputs = {"noise": torch.randn(batch, *IMAGE_SHAPE, generator=rng)}
            if config.conditioning == "class":
                inputs["labels"] = torch.arange(batch) % config.num_classes
            elif config.conditioning == "text":
                inputs["caption_embeddings"] = F.normalize(torch.randn(batch, config.text_dim, generator=rng), dim=1)
            return inputs

        notes = {
            "noise": "standard normal noise (batch, 1, 28, 28): the image at time 0",
            "images": f"greyscale images (batch, 1, 28, 28) in [0, 1], after {steps} Euler steps at guidance "
            f"w = {guidance:g} ({evaluations_per_sample(steps, guidance, config.conditioning != 'none')}"
            " U-Net evaluations per image)",
            "labels": f"class ids 0..{config.num_classes - 1}: {', '.join(self.class_names)}",
            "caption_embeddings": f"the caption's sentence embedding ({config.text_dim} numbers from "
            "all-MiniLM-L6-v2, as genlab.tasks.flow.text embeds it)",
        }
        return ExportGraph(Sampler(self.model, steps, guidance), example, "images", notes=notes)

    def _settings(self, steps: int | None, guidance: float | None) -> tuple[int, float]:
        steps = self.recipe.sample.steps if steps is None else steps
        guidance = self.recipe.sample.guidance if guidance is None else guidance
        if not 1 <= steps <= 1000:
            raise GenlabError(f"--steps must be in 1..1000, got {steps}")
        if not 0 <= guidance < math.inf:  # NaN fails every comparison
            raise GenlabError(f"--guidance must be a finite number >= 0, got {guidance}")
        return steps, guidance

    def _start(self, init: str | None, strength: float | None, mask: str | None) -> Start | None:
        if init is None:
            if strength is not None or mask is not None:
                raise GenlabError("--strength and --mask edit an image: give it with --init")
            return None
        strength = 1.0 if strength is None and mask is not None else 0.6 if strength is None else strength
        if not 0 < strength <= 1:
            raise GenlabError(f"--strength must be in (0, 1], got {strength}")
        return Start(to_model(read_image(init, "--init")), strength, None if mask is None else read_mask(mask))

    def generate(
        self,
        n: int = 16,
        label: int | None = None,
        seed: int = 0,
        prompt: str | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        init: str | None = None,
        strength: float | None = None,
        mask: str | None = None,
        low_res: str | None = None,
    ) -> GeneratedImages:
        """n images (n, 1, 28, 28) in [0, 1] from `steps` Euler steps (default sample.steps) with guidance
        weight `guidance` (default sample.guidance); `label` picks the class of a class-conditional
        model, `prompt` the caption of a text-conditioned one (else all classes in turn).
        Image-to-image: `init` (a 28x28 greyscale image) re-noised to time 1 - `strength` (default 0.6)
        and drawn back toward the label or prompt (SDEdit); with `mask` (white = redraw, black = keep) the
        kept pixels stay (inpainting; strength then defaults to 1). Super-resolution: `low_res` (a 14x14
        or 7x7 greyscale image) -> n 28x28 images whose 2x2 (4x4) block means are its pixels."""
        check_count(n)  # before the conditions are built for n images
        steps, guidance = self._settings(steps, guidance)
        cond, labels = self.conditions(n, label, prompt)
        start = self._start(init, strength, mask)
        if low_res is not None and start is not None:
            raise GenlabError("--low-res starts from noise: it does not combine with --init")
        small = None if low_res is None else to_model(read_low_res(low_res))
        images = draw(self.model, n, seed, cond, steps, guidance, start, low_res=small)
        in_turn = label is None and prompt is None and labels is not None
        return GeneratedImages(images, labels, nrow=len(self.class_names) if in_turn else None)

    @property
    def class_names(self) -> list[str]:
        text = self.config.conditioning == "text"  # captions may ask for any class the data set names
        return image_class_names(self.recipe.data.name, None if text else self.config.num_classes)

    def evaluate(self, n: int | None = None, steps: int | None = None, guidance: float | None = None) -> dict[str, Any]:
        """FID, precision/recall, Inception-style score, class histogram (and label accuracy for a
        class-conditional model) of n samples (default eval.num_samples) against the held-out test
        split, with the sampling cost in network evaluations; a text-conditioned model also scores how
        often the evaluator sees the caption's class, on training captions and on held-out ones
        (min(n, eval.caption_samples) images each).
        Written to report.json as `quality`."""
        recipe = self.recipe
        n = recipe.eval.num_samples if n is None else n
        check_count(n)  # before the conditions are built for n images
        steps, guidance = self._settings(steps, guidance)
        data = load_image_dataset(recipe.data.name, recipe.data.path)
        evaluator = load_evaluator(recipe.data.name)
        meter = CostMeter()
        cond, labels = self.conditions(n)
        images = draw(self.model, n, EVAL_SEED, cond, steps, guidance, batch_size=recipe.eval.batch_size)
        metrics = evaluate_samples(images, data, evaluator, requested_labels=labels, batch_size=recipe.eval.batch_size)
        if self.encoder is not None:
            caption_n = min(n, recipe.eval.caption_samples)
            metrics["caption_accuracy"] = {
                split: self._caption_accuracy(held_out, caption_n, steps, guidance, data, evaluator)
                for split, held_out in (("train_captions", False), ("held_out_captions", True))
            }
            metrics["caption_samples"] = caption_n
        metrics.update(
            steps=steps,
            guidance=guidance,
            checkpoint=self.checkpoint,
            evaluations_per_image=evaluations_per_sample(steps, guidance, cond is not None),
            eval_seconds=meter.snapshot()["wall_seconds"],
        )
        self.run.update_report(self.eval_section, metrics)
        return metrics

    def _caption_accuracy(
        self, held_out: bool, n: int, steps: int, guidance: float, data: ImageData, evaluator: ImageClassifier
    ) -> float:
        """Share of n images, drawn for the split's captions in turn, that the evaluator puts in the
        caption's class."""
        bank = self.captions(held_out)
        rows = torch.arange(n) % len(bank.texts)
        images = draw(
            self.model, n, EVAL_SEED + 1, bank.embeddings[rows], steps, guidance, batch_size=self.recipe.eval.batch_size
        )
        return evaluate_samples(images, data, evaluator, requested_labels=bank.labels[rows])["label_accuracy"]
