"""L-infinity adversarial attacks on image classifiers, and accuracy under attack.

A classifier here takes images (B, C, H, W) in [0, 1] and returns logits (B, K). An attack looks for
x' with ||x' - x||_inf <= epsilon and x' in [0, 1] that the model gets wrong, by ascending the
cross-entropy loss along the sign of its input gradient:

- FGSM (Goodfellow et al. 2015): one step of size epsilon; with a random start (Wong et al. 2020) the
  step starts from a uniform point of the ball and is 1.25 * epsilon long, then is clipped back.
- PGD (Madry et al. 2018): `steps` such steps of `step_size` from a uniform random start, each followed
  by a projection onto the ball and [0, 1]; `restarts` independent starts, keeping per example the worst
  case (a start that fools the model, else the one with the highest loss).

Only the input gets a gradient (torch.autograd.grad), so the model's parameters are left untouched, and
the model is attacked in eval mode. Every random draw comes from the torch.Generator passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.errors import GenlabError

ATTACKS = ("fgsm", "pgd")


@dataclass(frozen=True)
class Attack:
    """One attack's settings. `step_size` None: epsilon for FGSM (1.25 * epsilon with a random start),
    2.5 * epsilon / steps for PGD (Madry et al.: enough to cross the ball and back)."""

    name: str = "pgd"
    epsilon: float = 0.1
    steps: int = 50  # PGD only
    restarts: int = 1  # PGD only
    step_size: float | None = None
    random_start: bool = True  # PGD always starts at random; FGSM only when this is set

    def __post_init__(self) -> None:
        if self.name not in ATTACKS:
            raise GenlabError(f"unknown attack '{self.name}' (choose {' or '.join(ATTACKS)})")
        if not 0 <= self.epsilon <= 1:
            raise GenlabError(f"epsilon must be in [0, 1] (images are in [0, 1]), got {self.epsilon}")
        if self.steps < 1 or self.restarts < 1:
            raise GenlabError(f"attack steps and restarts must be >= 1, got {self.steps} and {self.restarts}")
        if self.step_size is not None and self.step_size <= 0:
            raise GenlabError(f"attack step size must be > 0, got {self.step_size}")

    @property
    def alpha(self) -> float:
        """The step length actually used."""
        if self.step_size is not None:
            return self.step_size
        if self.name == "fgsm":
            return 1.25 * self.epsilon if self.random_start else self.epsilon
        return 2.5 * self.epsilon / self.steps

    def describe(self) -> dict:
        return {
            "attack": self.name,
            "epsilon": self.epsilon,
            "step_size": self.alpha,
            "steps": self.steps if self.name == "pgd" else 1,
            "restarts": self.restarts if self.name == "pgd" else 1,
            "random_start": self.random_start or self.name == "pgd",
        }


def _uniform_start(images: Tensor, epsilon: float, generator: torch.Generator) -> Tensor:
    noise = torch.rand(images.shape, generator=generator).to(images.device) * 2 - 1  # U(-1, 1)
    return (images + epsilon * noise).clamp(0, 1)


def _project(adversarial: Tensor, images: Tensor, epsilon: float) -> Tensor:
    """Back into the epsilon-ball around `images` and into [0, 1]."""
    return torch.minimum(torch.maximum(adversarial, images - epsilon), images + epsilon).clamp(0, 1)


def _loss_and_grad(model: nn.Module, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Per-example cross-entropy (B,) and its gradient with respect to the images only."""
    with torch.enable_grad():  # also under a caller's torch.no_grad()
        # A non-leaf copy: torch's FlopCounterMode (the trainer's FLOP count) refuses autograd.grad of a leaf.
        images = images.detach().requires_grad_(True).clone()
        losses = F.cross_entropy(model(images), labels, reduction="none")  # (B,)
        (grad,) = torch.autograd.grad(losses.sum(), images)
    return losses.detach(), grad


def _ascend(model: nn.Module, images: Tensor, labels: Tensor, start: Tensor, attack: Attack, steps: int) -> Tensor:
    adversarial = start
    for _ in range(steps):
        _, grad = _loss_and_grad(model, adversarial, labels)
        adversarial = _project(adversarial + attack.alpha * grad.sign(), images, attack.epsilon)
    return adversarial.detach()


def perturb(
    model: nn.Module, images: Tensor, labels: Tensor, attack: Attack, generator: torch.Generator | None = None
) -> Tensor:
    """Adversarial versions (B, C, H, W) of `images` under `attack`, in the model's current mode (training
    calls this on the model it trains; `attack_images` puts it in eval mode first)."""
    generator = generator or torch.Generator().manual_seed(0)
    if attack.epsilon == 0:
        return images.clone()
    if attack.name == "fgsm":
        start = _uniform_start(images, attack.epsilon, generator) if attack.random_start else images
        return _ascend(model, images, labels, start, attack, steps=1)
    if attack.restarts == 1:  # nothing to choose between (and no forward pass spent choosing)
        return _ascend(model, images, labels, _uniform_start(images, attack.epsilon, generator), attack, attack.steps)
    best = images.clone()
    best_loss = torch.full((len(images),), -float("inf"), device=images.device)
    best_fooled = torch.zeros(len(images), dtype=torch.bool, device=images.device)
    for _ in range(attack.restarts):
        candidate = _ascend(
            model, images, labels, _uniform_start(images, attack.epsilon, generator), attack, attack.steps
        )
        with torch.no_grad():
            logits = model(candidate)
            loss = F.cross_entropy(logits, labels, reduction="none")
            fooled = logits.argmax(1) != labels
        # Worse = fools the model where the best so far did not, or fools it equally with a higher loss.
        worse = (fooled & ~best_fooled) | ((fooled == best_fooled) & (loss > best_loss))
        best[worse], best_loss[worse], best_fooled[worse] = candidate[worse], loss[worse], fooled[worse]
    return best


def attack_images(
    model: nn.Module, images: Tensor, labels: Tensor, attack: Attack, seed: int = 0, batch_size: int = 500
) -> Tensor:
    """`perturb` in eval mode, in batches, every random start drawn from one generator seeded by `seed`;
    the model's mode is restored afterwards."""
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        return torch.cat(
            [
                perturb(model, images[i : i + batch_size], labels[i : i + batch_size], attack, generator)
                for i in range(0, len(images), batch_size)
            ]
        )
    finally:
        model.train(was_training)


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, batch_size: int = 500) -> Tensor:
    """Predicted classes (N,)."""
    return torch.cat([model(images[i : i + batch_size]).argmax(1) for i in range(0, len(images), batch_size)])


def robust_accuracy(
    model: nn.Module, images: Tensor, labels: Tensor, attack: Attack, seed: int = 0, batch_size: int = 500
) -> dict[str, float]:
    """Clean accuracy and accuracy under `attack` of `images` (N, C, H, W) in [0, 1] with `labels` (N,).

    Examples the model already gets wrong count as broken without being attacked (an attack can only
    keep them wrong), which saves the attack's time on a weak model."""
    if len(images) == 0 or len(images) != len(labels):
        raise GenlabError(
            f"robust_accuracy needs as many labels as images, at least one: {len(images)} images, {len(labels)} labels"
        )
    if images.min() < 0 or images.max() > 1:
        raise GenlabError("robust_accuracy takes images in [0, 1]")
    was_training = model.training
    model.eval()
    try:
        correct = predict(model, images, batch_size) == labels
        robust = correct.clone()
        kept = correct.nonzero().squeeze(1)
        if len(kept):
            adversarial = attack_images(model, images[kept], labels[kept], attack, seed, batch_size)
            robust[kept] = predict(model, adversarial, batch_size) == labels[kept]
    finally:
        model.train(was_training)
    return {"clean_accuracy": correct.float().mean().item(), "robust_accuracy": robust.float().mean().item()}
