"""Training an image classifier, standard or adversarial, with a per-epoch robustness check.

Per step: a batch of training images (B, 1, 28, 28) in [0, 1], made adversarial by the recipe's method
(process.py), cross-entropy, one Adam step at the one-cycle learning rate of that step.
After each epoch: clean and PGD accuracy on `data.monitor_size` training images held out of training.
FGSM training can *catastrophically overfit* (Wong et al. 2020): within an epoch the model learns to
defeat the single-step attack it trains on while PGD accuracy collapses to ~0. When the held-out PGD
accuracy falls `train.overfit_drop` below its best, the epoch's metrics carry
`monitor/catastrophic_overfitting = 1`, a warning line is printed, and checkpoints/best keeps the most
robust epoch (early stopping, their remedy).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from genlab.core.distributed import DistEnv, wrap_ddp
from genlab.core.optim import set_lr
from genlab.core.run import RunDir
from genlab.core.training import weights_meta
from genlab.data import load_image_dataset
from genlab.errors import GenlabError
from genlab.evaluation.adversarial import Attack, robust_accuracy
from genlab.io.files import atomic_write_bytes
from genlab.models.convnet import ConvNet
from genlab.tasks.image_classifier.picture import adversarial_examples
from genlab.tasks.image_classifier.process import classifier_loss, one_cycle_lr, training_attack, warmed_up
from genlab.tasks.image_classifier.recipe import ClassifierRecipe

MONITOR_SEED = 4321  # the random starts of the per-epoch check: the same every epoch
SAMPLE_IMAGES = 8  # held-out images shown clean and attacked in samples/epoch_XXXX.png


class ClassifierTraining:
    def __init__(self, recipe: ClassifierRecipe, env: DistEnv, run: RunDir):
        data = load_image_dataset(recipe.data.name, recipe.data.path)
        self.recipe, self.env, self.data = recipe, env, data
        images, labels = data.tensors("train", recipe.data.limit)
        held = recipe.data.monitor_size
        if held >= len(labels):
            raise GenlabError(f"data.monitor_size={held} leaves no training images of the {len(labels)} there are")
        device = env.device
        # The whole training set lives on the device: (N, 1, 28, 28) floats in [0, 1]; the last
        # `monitor_size` images are held out for the per-epoch robustness check.
        self.images, self.labels = images[:-held].to(device), labels[:-held].to(device)
        self.monitor_images, self.monitor_labels = images[-held:].to(device), labels[-held:].to(device)
        self.num_examples = len(self.labels)
        self.config = dataclasses.replace(recipe.model, num_classes=data.num_classes)
        network = ConvNet(self.config).to(device)  # initial weights from the trainer's seeded global RNG
        self.network = network
        self.model = wrap_ddp(network, env)
        self.modules = {"classifier": network}
        t = recipe.train
        self.optimizers = {"classifier": torch.optim.Adam(network.parameters(), lr=t.lr, weight_decay=t.weight_decay)}
        self.attack = training_attack(t)
        self.monitor_attack = Attack("pgd", recipe.eval.epsilon, steps=recipe.eval.monitor_steps)
        steps_per_epoch = self.num_examples // recipe.data.batch_size
        self.total_steps = t.epochs * steps_per_epoch
        self.warmup_steps = t.epsilon_warmup * steps_per_epoch
        self.noise = torch.Generator().manual_seed(recipe.seed + 1)  # the attacks' random starts
        self.best_robust = -1.0  # the best held-out PGD accuracy so far
        self.overfit_epoch = 0  # the first epoch flagged as catastrophic overfitting (0 = none)
        # Standard training keeps its best clean epoch; adversarial training its most robust one.
        self.best_metric = "monitor/clean_error" if self.attack is None else "monitor/pgd_error"
        self.data_source = f"{data.name} from {data.source}"

    def meta(self) -> dict[str, Any]:
        r = self.recipe
        return weights_meta("image_classifier", self.config, dataset=r.data.name, method=r.train.method)

    def rng_state(self) -> dict[str, Any]:
        # Beside the generator, the overfitting detector's memory: a resumed run flags the same epochs.
        return {"noise": self.noise.get_state(), "best_robust": self.best_robust, "overfit_epoch": self.overfit_epoch}

    def load_rng_state(self, state: dict[str, Any]) -> None:
        self.noise.set_state(state["noise"])
        self.best_robust, self.overfit_epoch = state["best_robust"], state["overfit_epoch"]

    def step_kind(self, step: int) -> str:
        return self.recipe.train.method  # every step of a run does the same work

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        set_lr(self.optimizers["classifier"], one_cycle_lr(step, self.total_steps, self.recipe.train.lr))
        images = self.images.index_select(0, indices.to(self.images.device))  # (B, 1, 28, 28)
        labels = self.labels[indices.to(self.labels.device)]  # (B,)
        attack = self.attack and warmed_up(self.attack, step, self.warmup_steps)
        loss, logits = classifier_loss(self.model, self.network, images, labels, attack, self.noise)
        self.optimizers["classifier"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["classifier"].step()
        return {"loss": loss.item(), "train_accuracy": (logits.argmax(1) == labels).float().mean().item()}

    def end_period(self, period: int, run: RunDir) -> dict[str, float]:
        if not self.env.is_main:
            return {}
        scores = robust_accuracy(
            self.network, self.monitor_images, self.monitor_labels, self.monitor_attack, seed=MONITOR_SEED
        )
        clean, robust = scores["clean_accuracy"], scores["robust_accuracy"]
        if self.attack is not None and robust < self.best_robust - self.recipe.train.overfit_drop:
            self.overfit_epoch = self.overfit_epoch or period
            print(
                f"warning: catastrophic overfitting at epoch {period}: held-out PGD accuracy {robust:.3f}, "
                f"down from {self.best_robust:.3f}; checkpoints/best keeps the most robust epoch"
            )
        self.best_robust = max(self.best_robust, robust)
        shown = slice(0, SAMPLE_IMAGES)
        picture = adversarial_examples(
            self.network,
            self.monitor_images[shown],
            self.monitor_labels[shown],
            self.monitor_attack,
            self.data.class_names,
            seed=MONITOR_SEED,
        )
        atomic_write_bytes(run.samples_dir / f"epoch_{period:04d}.png", picture.png())
        return {
            "monitor/clean_accuracy": clean,
            "monitor/pgd_accuracy": robust,
            "monitor/clean_error": 1 - clean,
            "monitor/pgd_error": 1 - robust,
            "monitor/catastrophic_overfitting": float(self.overfit_epoch > 0),
        }
