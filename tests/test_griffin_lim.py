"""The one Griffin-Lim (genlab.io.griffin_lim) behind both vocoders: the spoken-digit GAN's output is what it
was before the two copies were folded into one, and a clip does not depend on its batch."""

import numpy as np
import torch

from genlab.data.speech_features import griffin_lim as speech_griffin_lim
from genlab.io.griffin_lim import griffin_lim, stft
from genlab.tasks.audio.spectrogram import image_to_wave


def test_audio_gan_vocoder_output_unchanged():
    # Samples of image_to_wave's output on this fixed image, recorded with the GAN's own loop before it
    # became a call of genlab.io.griffin_lim (bit-identical then: torch.equal over the 3 x 16000 samples).
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    waves = image_to_wave(image)
    assert waves.shape == (3, 16_000)
    expected = [-0.06752636283636093, -0.14758393168449402, -0.07395684719085693, -0.057326462119817734]
    assert torch.allclose(waves[0, 4000:4004], torch.tensor(expected), atol=1e-5)
    assert abs(waves[1].abs().sum().item() - 1487.640869140625) < 1e-2


def test_batch_independent_and_magnitude_recovered():
    t = torch.arange(4000) / 8000
    wave = torch.sin(2 * torch.pi * 440 * t) * torch.linspace(0.2, 1, 4000)  # (4000,) a swelling tone
    magnitude = stft(wave, 256, 80).abs()  # (129, 51)
    alone = griffin_lim(magnitude, 256, 80, 4000)
    batch = griffin_lim(torch.stack([magnitude, magnitude * 0.5]), 256, 80, 4000)
    assert torch.allclose(batch[0], alone, atol=1e-5)
    error = (stft(alone, 256, 80).abs() - magnitude).norm() / magnitude.norm()
    assert error < 0.2  # spectral convergence: the magnitudes come back, the phases are invented


def test_speech_vocoder_length_and_peak():
    wave = speech_griffin_lim(np.full((21, 64), -3.0, dtype=np.float32), n_iter=4)
    assert wave.shape == (20 * 80,) and abs(np.abs(wave).max() - 0.9) < 1e-5
