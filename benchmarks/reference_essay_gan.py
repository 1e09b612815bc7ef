"""The essay's GAN (§5) with its bugs fixed and nothing more: the benchmark's reference.

Fixed: G reads noise z ~ N(0, I) of size 100 (the essay fed it real images); D and G have their own
Adam optimizers and separate steps (the essay updated both with one optimizer on D's loss); D returns
logits, so the loss is BCE-with-logits (the essay put BCELoss on unbounded outputs); the G loss is
the non-saturating one; the data comes through a DataLoader (the essay indexed a loader). Kept: the
layers, Adam(lr=2e-4, betas=(0.5, 0.999)), batch 128.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(100, 256)
        self.fc1 = nn.Linear(256, 512)
        self.fc2 = nn.Linear(512, 1024)
        self.fc3 = nn.Linear(1024, 784)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        x = torch.relu(self.fc(x))
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.sigmoid(self.fc3(x))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 1024)
        self.fc1 = nn.Linear(1024, 512)
        self.fc2 = nn.Linear(512, 256)
        self.fc3 = nn.Linear(256, 1)

    def forward(self, x):
        x = torch.relu(self.fc(x))
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


def train_reference(
    train_images: np.ndarray, seconds: float = 0.0, steps: int = 0, seed: int = 0, batch_size: int = 128
) -> tuple[Generator, dict]:
    """Train for a wall-clock budget (seconds) or a number of steps; returns G and throughput figures."""
    torch.manual_seed(seed)
    generator, discriminator = Generator(), Discriminator()
    criterion = nn.BCEWithLogitsLoss()
    optimizer_g = optim.Adam(generator.parameters(), lr=0.0002, betas=(0.5, 0.999))
    optimizer_d = optim.Adam(discriminator.parameters(), lr=0.0002, betas=(0.5, 0.999))
    data = torch.from_numpy(train_images).float().div(255).view(-1, 784)
    train_loader = DataLoader(TensorDataset(data), batch_size=batch_size, shuffle=True, drop_last=True)
    done, start = 0, time.perf_counter()
    while True:
        for (real,) in train_loader:
            z = torch.randn(real.size(0), 100)
            fake = generator(z)
            ones, zeros = torch.ones(real.size(0), 1), torch.zeros(real.size(0), 1)
            optimizer_d.zero_grad()
            d_loss = criterion(discriminator(real), ones) + criterion(discriminator(fake.detach()), zeros)
            d_loss.backward()
            optimizer_d.step()
            optimizer_g.zero_grad()
            g_loss = criterion(discriminator(fake), ones)
            g_loss.backward()
            optimizer_g.step()
            done += 1
            elapsed = time.perf_counter() - start
            if (steps and done >= steps) or (seconds and elapsed >= seconds):
                return generator, {"steps": done, "seconds": elapsed, "images_per_second": done * batch_size / elapsed}


@torch.no_grad()
def sample_reference(generator: Generator, n: int, seed: int = 1234) -> torch.Tensor:
    noise = torch.Generator().manual_seed(seed)
    return torch.cat(
        [generator(torch.randn(min(1000, n - i), 100, generator=noise)).view(-1, 1, 28, 28) for i in range(0, n, 1000)]
    )
