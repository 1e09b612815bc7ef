"""A token-transformer run opened for use: prompt -> caption tokens -> image tokens -> VQGAN -> images."""

from __future__ import annotations

import math
from typing import Any

import torch

from genlab.core.checkpoint import load_weights, open_run_checkpoint
from genlab.core.recipe import from_dict
from genlab.core.run import CostMeter, RunDir
from genlab.data import ImageData, image_class_names, load_image_dataset
from genlab.errors import GenlabError
from genlab.evaluation.classifier import ImageClassifier, evaluator_or_none
from genlab.evaluation.image_eval import evaluate_samples
from genlab.interop.onnx import ExportGraph, token_logits_graph
from genlab.io.images import GeneratedImages
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.models.vqgan import VQGAN, VQGANConfig
from genlab.tasks.contract import ImageGeneratorRun
from genlab.tasks.flow.pipeline import check_count
from genlab.tasks.flow.text import CaptionBank
from genlab.tasks.vq_dalle.captions import SPECIALS, CaptionTokenizer, caption_set
from genlab.tasks.vq_dalle.pipeline import draw
from genlab.tasks.vq_dalle.recipe import VQDalleRecipe
from genlab.tasks.vq_dalle.training import model_meta

EVAL_SEED = 1234  # the draws of `evaluate`, so that two evaluations of one checkpoint agree
GRID_COLUMNS = 10  # classes in turn: one column per class, at most this many (emoji have over a thousand)


class VQDalleRun(ImageGeneratorRun):
    def __init__(self, run: RunDir, recipe: VQDalleRecipe, checkpoint: str = "last"):
        super().__init__(run, recipe, checkpoint)
        folder, meta = open_run_checkpoint(run, checkpoint, "vq_dalle")
        saved = meta["model"]
        try:
            self.config = from_dict(TransformerConfig, saved["transformer"])
            vqgan_config = from_dict(VQGANConfig, saved["vqgan"])
            words, length = list(saved["words"]), int(saved["caption_tokens"])
        except (KeyError, TypeError, ValueError) as exc:
            raise GenlabError(f"{folder / 'meta.json'} does not describe a vq_dalle checkpoint ({exc})") from None
        if words[: len(SPECIALS)] != list(SPECIALS):
            raise GenlabError(f"{folder / 'meta.json'}: its caption vocabulary does not start with {SPECIALS}")
        self.tokenizer = CaptionTokenizer(words, vqgan_config.codebook_size, length)
        self.model, self.vqgan = Transformer(self.config), VQGAN(vqgan_config)
        expected = {"model": model_meta(self.config, vqgan_config, self.tokenizer)}
        load_weights(folder, {"transformer": self.model, "vqgan": self.vqgan}, expected)
        self.model.eval(), self.vqgan.eval()
        self._captions: dict[bool, CaptionBank] = {}

    def captions(self, held_out: bool) -> CaptionBank:
        """The training (or held-out) captions of the run's dataset as rows of word ids."""
        if held_out not in self._captions:
            data = load_image_dataset(self.recipe.data.name, self.recipe.data.path)
            self._captions[held_out] = CaptionBank(*caption_set(data, held_out), self.tokenizer)
        return self._captions[held_out]

    @property
    def class_names(self) -> list[str]:
        return image_class_names(self.recipe.data.name)

    def _settings(
        self, guidance: float | None, temperature: float | None, top_k: int | None
    ) -> tuple[float, float, int | None]:
        s = self.recipe.sample
        guidance = s.guidance if guidance is None else guidance
        temperature = s.temperature if temperature is None else temperature
        top_k = (s.top_k or None) if top_k is None else top_k
        if not 0 <= guidance < math.inf:  # NaN fails every comparison
            raise GenlabError(f"--guidance must be a finite number >= 0, got {guidance}")
        if not 0 <= temperature < math.inf:
            raise GenlabError(f"--temperature must be a finite number >= 0, got {temperature}")
        if top_k is not None and top_k < 1:
            raise GenlabError(f"--top-k must be >= 1, got {top_k}")
        return guidance, temperature, top_k

    def conditions(self, n: int, label: int | None, prompt: str | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Caption rows (n, Lc) and the class each image should show (None for a free prompt): the prompt's,
        a training caption of class `label` (its captions in turn), or every class in turn."""
        if prompt is not None:
            if label is not None:
                raise GenlabError("give --prompt or --label, not both")
            return self.tokenizer.encode(prompt)[None].expand(n, -1), None
        bank = self.captions(held_out=False)
        if label is None:
            labels, rows = bank.cycle(n)
            return rows, labels
        classes = len(bank.counts)
        if not 0 <= label < classes or bank.counts[label] == 0:
            raise GenlabError(f"--label must be a class of the training split in 0..{classes - 1}, got {label}")
        picks = bank.offsets[label] + torch.arange(n) % bank.counts[label]
        return bank.embeddings[picks], torch.full((n,), label)

    def generate(
        self,
        n: int = 16,
        label: int | None = None,
        seed: int = 0,
        prompt: str | None = None,
        guidance: float | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
    ) -> GeneratedImages:
        """n images (n, C, S, S) in [0, 1] (1x28x28 Fashion-MNIST), each (S/4)^2 tokens written one by one
        with a KV cache: for `prompt` (a caption of at most data.caption_tokens words), for class `label` (its training
        captions), or every class in turn. Classifier-free guidance weight `guidance` on the logits,
        `temperature` (0: greedy) and `top_k` (defaults: the recipe's sample section).

        Args:
            top_k: None = the recipe's sample.top_k
        """
        check_count(n)
        guidance, temperature, top_k = self._settings(guidance, temperature, top_k)
        rows, labels = self.conditions(n, label, prompt)
        images = draw(self.model, self.vqgan, self.tokenizer, rows, seed, guidance, temperature, top_k)
        in_turn = label is None and prompt is None
        return GeneratedImages(images, labels, nrow=min(len(self.class_names), GRID_COLUMNS) if in_turn else None)

    def export_graph(self) -> ExportGraph:
        """The transformer without a cache: [caption words][<image>][image codes] ids -> next-token logits."""
        k = self.vqgan.config.codebook_size
        return token_logits_graph(
            self.model, f"ids 0..{k - 1} are image codes, {k}.. caption words (meta.json 'words', in order)"
        )

    def evaluate(
        self, n: int | None = None, guidance: float | None = None, temperature: float | None = None
    ) -> dict[str, Any]:
        """FID, precision/recall, Inception-style score, class histogram and label accuracy of n samples
        (default eval.num_samples; training captions, every class in turn) against the held-out test split,
        and caption accuracy: how often the evaluator sees the caption's class, on training and on
        held-out captions (min(n, eval.caption_samples) images each). Written to report.json as `quality`."""
        recipe = self.recipe
        n = recipe.eval.num_samples if n is None else n
        check_count(n)
        guidance, temperature, top_k = self._settings(guidance, temperature, None)
        data = load_image_dataset(recipe.data.name, recipe.data.path)
        evaluator = evaluator_or_none(recipe.data.name)
        if evaluator is None:
            raise GenlabError(
                f"{recipe.data.name} has no evaluator net, so no FID or caption accuracy: `genlab eval` its VQGAN run "
                "(data.tokenizer) for reconstruction PSNR and codebook use"
            )
        meter = CostMeter()
        rows, labels = self.conditions(n, None, None)
        images = draw(self.model, self.vqgan, self.tokenizer, rows, EVAL_SEED, guidance, temperature, top_k)
        metrics = evaluate_samples(images, data, evaluator, requested_labels=labels, batch_size=recipe.eval.batch_size)
        caption_n = min(n, recipe.eval.caption_samples)
        metrics["caption_accuracy"] = {
            split: self._caption_accuracy(held_out, caption_n, (guidance, temperature, top_k), data, evaluator)
            for split, held_out in (("train_captions", False), ("held_out_captions", True))
        }
        metrics.update(
            caption_samples=caption_n,
            guidance=guidance,
            temperature=temperature,
            top_k=top_k,
            checkpoint=self.checkpoint,
            eval_seconds=meter.snapshot()["wall_seconds"],
        )
        self.run.update_report(self.eval_section, metrics)
        return metrics

    def _caption_accuracy(
        self, held_out: bool, n: int, settings: tuple, data: ImageData, evaluator: ImageClassifier
    ) -> float:
        """Share of n images, drawn for the split's captions in turn, that the evaluator puts in the
        caption's class."""
        bank = self.captions(held_out)
        picks = torch.arange(n) % len(bank.texts)
        images = draw(self.model, self.vqgan, self.tokenizer, bank.embeddings[picks], EVAL_SEED + 1, *settings)
        return evaluate_samples(images, data, evaluator, requested_labels=bank.labels[picks])["label_accuracy"]
