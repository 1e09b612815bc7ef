"""The training objective of an image classifier, kept apart from the network: cross-entropy on the
clean batch (standard), or on adversarial versions of it made against the current weights.

- fgsm-rs (Wong et al. 2020, "Fast is better than free"): one signed-gradient step of 1.25 * epsilon
  from a uniform random point of the epsilon-ball: two forward/backward passes per step.
- pgd (Madry et al. 2018): `pgd_steps` projected steps from a random start: pgd_steps + 1 passes.
Both approximate the inner maximisation of min_theta E max_{||d||_inf <= eps} loss(x + d, y).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.evaluation.adversarial import Attack, perturb
from genlab.tasks.image_classifier.recipe import ClassifierTrainConfig


def training_attack(train: ClassifierTrainConfig) -> Attack | None:
    """The attack that makes each training batch, or None for standard training."""
    if train.method == "standard":
        return None
    if train.method == "fgsm-rs":
        return Attack("fgsm", train.epsilon, step_size=train.step_size, random_start=True)
    return Attack("pgd", train.epsilon, steps=train.pgd_steps, step_size=train.step_size)


def warmed_up(attack: Attack, step: int, warmup_steps: int) -> Attack:
    """The attack with its epsilon (and so its default step size) scaled by (step + 1) / warmup_steps
    while step < warmup_steps: a network at its random start cannot fit the full radius at once."""
    if step >= warmup_steps:
        return attack
    return dataclasses.replace(attack, epsilon=attack.epsilon * (step + 1) / warmup_steps)


def classifier_loss(
    model: nn.Module,
    attacker: nn.Module,
    images: Tensor,
    labels: Tensor,
    attack: Attack | None,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """(loss, logits (B, K)) on the batch the objective trains on: `images` (B, 1, 28, 28), attacked
    through `attacker` (the bare network: its input gradients need no all-reduce) when `attack` is set,
    then classified by `model` (the network as the trainer wraps it)."""
    if attack is not None:
        images = perturb(attacker, images, labels, attack, generator)
    logits = model(images)
    return F.cross_entropy(logits, labels), logits


def one_cycle_lr(step: int, total: int, peak: float) -> float:
    """Up linearly to `peak` at mid-training, then down linearly to ~0 at the last step (the cyclic
    schedule Wong et al. train with); a function of the step alone, so a resumed run follows it too."""
    half = total / 2
    return peak * min(step + 1, total - step) / half
