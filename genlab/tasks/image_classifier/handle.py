"""An image_classifier run opened for use: its network, adversarial examples of test images, and
accuracy under attack (the `robustness` section of report.json)."""

from __future__ import annotations

import json
from typing import Any

import torch

from genlab.core.checkpoint import load_network
from genlab.core.run import CostMeter, RunDir
from genlab.data import image_class_names, load_image_dataset
from genlab.errors import GenlabError
from genlab.evaluation.adversarial import Attack, robust_accuracy
from genlab.interop.onnx import ExportGraph
from genlab.models.convnet import ConvNet, ConvNetConfig
from genlab.tasks.contract import RunHandle
from genlab.tasks.image_classifier.picture import AdversarialExamples, adversarial_examples
from genlab.tasks.image_classifier.recipe import ClassifierRecipe

EVAL_SEED = 1234  # the attacks' random starts in `evaluate`: two evaluations of one checkpoint agree


class ClassifierRun(RunHandle):
    eval_section = "robustness"
    output_suffixes = (".png",)
    # Served as images: a request gets adversarial versions of test images (of the class asked for).
    endpoint = "images"

    def __init__(self, run: RunDir, recipe: ClassifierRecipe, checkpoint: str = "last"):
        super().__init__(run, recipe, checkpoint)
        self.config, model, *_ = load_network(run, checkpoint, "image_classifier", ConvNetConfig, ConvNet, "classifier")
        self.model = model.requires_grad_(False)  # attacks need input gradients only
        self._test: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def class_names(self) -> list[str]:
        return image_class_names(self.recipe.data.name, self.config.num_classes)

    def export_graph(self) -> ExportGraph:
        """The classifier: images -> class scores."""

        def example(batch: int) -> dict[str, torch.Tensor]:
            return {"images": torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(batch))}

        notes = {
            "images": "greyscale images (batch, 1, 28, 28) in [0, 1]",
            "logits": f"scores of the classes {', '.join(self.class_names)} (softmax for probabilities)",
        }
        return ExportGraph(self.model, example, "logits", notes=notes)

    def test_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The test images (N, 1, 28, 28) in [0, 1] and labels (N,), loaded once."""
        if self._test is None:
            self._test = load_image_dataset(self.recipe.data.name, self.recipe.data.path).tensors("test")
        return self._test

    def threat(self, attack: str | None, epsilon: float | None, steps: int | None, restarts: int | None) -> Attack:
        """The recipe's evaluation attack, with any of its settings replaced."""
        e = self.recipe.eval
        pick = lambda given, default: default if given is None else given  # noqa: E731
        return Attack(
            pick(attack, e.attack), pick(epsilon, e.epsilon), pick(steps, e.steps), pick(restarts, e.restarts)
        )

    def generate(
        self,
        n: int = 16,
        label: int | None = None,
        seed: int = 0,
        attack: str | None = None,
        epsilon: float | None = None,
        steps: int | None = None,
        restarts: int | None = None,
    ) -> AdversarialExamples:
        """n test images (of class `label`, else any), drawn by `seed`, with their adversarial versions
        under the recipe's evaluation attack (or the one given) and the model's predictions."""
        threat = self.threat(attack, epsilon, steps, restarts)
        images, labels = self.test_split()
        if label is not None and not 0 <= label < self.config.num_classes:
            raise GenlabError(f"label must be in 0..{self.config.num_classes - 1}, got {label}")
        pool = torch.arange(len(labels)) if label is None else (labels == label).nonzero().squeeze(1)
        if not 1 <= n <= len(pool):
            raise GenlabError(f"n must be in 1..{len(pool)} (the test images there are), got {n}")
        chosen = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))[:n]]
        return adversarial_examples(
            self.model, images[chosen], labels[chosen], threat, tuple(self.class_names), seed=seed
        )

    def evaluate(
        self,
        attack: str | None = None,
        epsilon: float | None = None,
        steps: int | None = None,
        restarts: int | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """Clean accuracy and accuracy under attack (default: the recipe's, PGD-50 with 10 restarts) of the
        first `limit` test images (0 = all); written to report.json as `robustness`, with the per-epoch
        held-out check of training and whether it saw catastrophic overfitting."""
        threat = self.threat(attack, epsilon, steps, restarts)
        limit = self.recipe.eval.limit if limit is None else limit
        if limit < 0:
            raise GenlabError(f"limit must be >= 0 (0 = every test image), got {limit}")
        meter = CostMeter()
        images, labels = self.test_split()
        if limit:
            images, labels = images[:limit], labels[:limit]
        scores = robust_accuracy(
            self.model, images, labels, threat, seed=EVAL_SEED, batch_size=self.recipe.eval.batch_size
        )
        monitor = self.training_monitor()
        metrics = {
            **scores,
            **threat.describe(),
            "test_images": f"the first {len(labels)} of the test split",
            "seed": EVAL_SEED,
            "checkpoint": self.checkpoint,
            "train_method": self.recipe.train.method,
            "train_epsilon": self.recipe.train.epsilon,
            "per_epoch": monitor,
            "catastrophic_overfitting": any(row["catastrophic_overfitting"] for row in monitor),
        }
        metrics["eval_seconds"] = meter.snapshot()["wall_seconds"]
        self.run.update_report(self.eval_section, metrics)
        return metrics

    def training_monitor(self) -> list[dict[str, float]]:
        """The per-epoch held-out check from metrics.jsonl, one row per epoch (the last logged, if a
        resumed run logged one twice)."""
        path = self.run.path / "metrics.jsonl"
        rows: dict[float, dict[str, float]] = {}
        for line in path.read_text().splitlines() if path.is_file() else []:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash: the other epochs still count
            if isinstance(row, dict) and "monitor/pgd_accuracy" in row:
                rows[row["period"]] = {
                    "epoch": row["period"],
                    "clean_accuracy": row["monitor/clean_accuracy"],
                    "pgd_accuracy": row["monitor/pgd_accuracy"],
                    "catastrophic_overfitting": bool(row["monitor/catastrophic_overfitting"]),
                }
        return [rows[k] for k in sorted(rows)]
