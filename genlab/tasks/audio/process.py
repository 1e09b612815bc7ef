"""The audio GAN's training process, kept apart from its networks: drawing clips (noise -> spectrogram
-> waveform). Its losses, R1 and EMA are the GAN task's (genlab/tasks/gan/process.py): audio builds on it.
"""

from __future__ import annotations

import torch

from genlab.errors import GenlabError
from genlab.models.audio_gan import SPEC_SHAPE, SpecGenerator
from genlab.tasks.audio.spectrogram import image_to_wave

MAX_CLIPS = 10_000  # clips per call: 10,000 s of audio, 640 MB of float32 waveforms


def check_request(n: int, label: int | None, num_classes: int) -> None:
    if n < 1:
        raise GenlabError(f"--n must be at least 1, got {n}")
    if n > MAX_CLIPS:
        raise GenlabError(
            f"--n {n} is more than the {MAX_CLIPS:,} clips one call draws; draw several batches "
            "with other --seed values"
        )
    if label is not None and not 0 <= label < num_classes:
        raise GenlabError(f"--label must be in 0..{num_classes - 1}, got {label}")


def cycle_labels(n: int, label: int | None, num_classes: int) -> torch.Tensor:
    """(n,) `label`, or 0..K-1 in turn."""
    return torch.full((n,), label) if label is not None else torch.arange(n) % num_classes


@torch.no_grad()
def draw_spectrograms(
    generator: SpecGenerator, labels: torch.Tensor, seed: int, batch_size: int = 1000
) -> torch.Tensor:
    """(n,) labels -> (n, 64, 64) spectrogram images in [-1, 1], the noise drawn from `seed`."""
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    noise = torch.Generator().manual_seed(seed)
    out = torch.empty(len(labels), *SPEC_SHAPE[1:])  # (n, mel bands, frames)
    for start in range(0, len(labels), batch_size):
        chunk = labels[start : start + batch_size]
        z = torch.randn(len(chunk), generator.config.latent_dim, generator=noise)
        out[start : start + len(chunk)] = generator(z.to(device), chunk.to(device))[:, 0].cpu()
    generator.train(was_training)
    return out


def to_waves(spectrograms: torch.Tensor, n_iter: int, batch_size: int = 250) -> torch.Tensor:
    """(n, 64, 64) -> (n, 16000) waveforms by Griffin-Lim, `batch_size` clips at a time (bounded memory)."""
    return torch.cat(
        [image_to_wave(spectrograms[i : i + batch_size], n_iter) for i in range(0, len(spectrograms), batch_size)]
    )
