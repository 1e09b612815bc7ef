"""A small convolutional image classifier: the MNIST network of Wong et al. 2020 ("Fast is better than
free"), the model their FGSM-with-random-start adversarial training was measured on.

(B, 1, 28, 28) in [0, 1] -> two stride-2 4x4 convolutions (28 -> 14 -> 7) -> a hidden layer -> logits.
No batch norm and no dropout, so train and eval mode compute the same function: an attack made during
training attacks exactly the model being trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn


@dataclass
class ConvNetConfig:
    channels: list[int] = field(default_factory=lambda: [16, 32])  # two conv layers' widths
    hidden: int = 100
    num_classes: int = 10

    def __post_init__(self) -> None:
        if len(self.channels) != 2 or min(self.channels) < 1:
            raise ValueError("model.channels must be two widths >= 1")
        if self.hidden < 1 or self.num_classes < 2:
            raise ValueError("model.hidden must be >= 1 and model.num_classes >= 2")


class ConvNet(nn.Module):
    def __init__(self, config: ConvNetConfig):
        super().__init__()
        c1, c2 = config.channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 4, stride=2, padding=1),
            nn.ReLU(),  # (B, c1, 14, 14)
            nn.Conv2d(c1, c2, 4, stride=2, padding=1),
            nn.ReLU(),  # (B, c2, 7, 7)
            nn.Flatten(),  # (B, c2 * 49)
            nn.Linear(c2 * 7 * 7, config.hidden),
            nn.ReLU(),  # (B, hidden)
        )
        self.head = nn.Linear(config.hidden, config.num_classes)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images))  # (B, num_classes) logits
