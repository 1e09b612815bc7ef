"""Adversarial examples as a picture: test images, their attacked versions and the perturbation, each
with the model's prediction (the true label above the clean image; red where the model is wrong)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from genlab.errors import GenlabError
from genlab.evaluation.adversarial import Attack, attack_images, predict
from genlab.io.files import atomic_write_bytes

COLUMNS = 8  # images per block of three rows (clean / adversarial / perturbation)


@dataclass
class AdversarialExamples:
    """What `generate` returns. `images` are the adversarial images (N, 1, 28, 28) and `labels` the true
    classes (N,), the two fields `genlab serve` reads; the rest is for the picture."""

    clean: Tensor
    images: Tensor
    labels: Tensor
    clean_predictions: Tensor
    predictions: Tensor
    class_names: tuple[str, ...]
    attack: Attack

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return (
            f"<{len(self)} adversarial examples, {self.attack.name} eps={self.attack.epsilon}: predictions "
            f"{self.predictions.tolist()} (clean {self.clean_predictions.tolist()}) for labels "
            f"{self.labels.tolist()}>"
        )

    def png(self) -> bytes:
        n = len(self)
        cols = min(n, COLUMNS)
        blocks = -(-n // cols)
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy, as the other plots: a slow import
        from matplotlib.figure import Figure

        figure = Figure(figsize=(1.15 * cols, 3.9 * blocks))
        FigureCanvasAgg(figure)
        names = self.class_names
        eps = max(self.attack.epsilon, 1e-6)
        for i in range(n):
            block, col = divmod(i, cols)
            y, p0, p1 = (int(t[i]) for t in (self.labels, self.clean_predictions, self.predictions))
            rows = (
                (self.clean[i, 0], f"true {names[y]}\npred {names[p0]}", p0 != y, "gray", 0, 1),
                (self.images[i, 0], f"attacked\npred {names[p1]}", p1 != y, "gray", 0, 1),
                (self.images[i, 0] - self.clean[i, 0], "δ", False, "RdBu_r", -eps, eps),
            )
            for r, (pixels, title, wrong, cmap, low, high) in enumerate(rows):
                axis = figure.add_subplot(3 * blocks, cols, (3 * block + r) * cols + col + 1)
                axis.imshow(pixels.cpu().numpy(), cmap=cmap, vmin=low, vmax=high)
                axis.set_title(title, fontsize=6.5, color="red" if wrong else "black")
                axis.set_axis_off()
        right = [(p == self.labels).sum().item() for p in (self.clean_predictions, self.predictions)]
        figure.suptitle(
            f"{self.attack.name.upper()} ε={self.attack.epsilon:g}: {right[0]}/{n} right clean, "
            f"{right[1]}/{n} attacked (row 3: the perturbation δ)",
            fontsize=9,
        )
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
        return buffer.getvalue()

    def save(self, out: str | Path) -> Path:
        out = Path(out)
        if out.suffix != ".png":
            raise GenlabError(f"--out {out} must end in .png")
        if not out.parent.is_dir():
            raise GenlabError(f"--out {out}: folder {out.parent} does not exist")
        return atomic_write_bytes(out, self.png())


def adversarial_examples(
    model: nn.Module, images: Tensor, labels: Tensor, attack: Attack, class_names: tuple[str, ...], seed: int = 0
) -> AdversarialExamples:
    """Attack `images` (N, 1, 28, 28) and record the model's predictions before and after."""
    adversarial = attack_images(model, images, labels, attack, seed)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            clean_predictions, predictions = predict(model, images), predict(model, adversarial)
    finally:
        model.train(was_training)
    return AdversarialExamples(images, adversarial, labels, clean_predictions, predictions, tuple(class_names), attack)
