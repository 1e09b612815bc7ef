"""What the models return, as the response bodies carry it: images as base64 PNGs, clips as base64 WAVs,
a classifier's scores as labelled probabilities."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from genlab.io.audio import wav_bytes
from genlab.io.images import GeneratedImages, image_array, png_bytes
from genlab.serve import schemas as s


def image_data(generated: GeneratedImages, names: list[str]) -> list[s.ImageData]:
    """Each image as a PNG, with the name of the class asked for (None: an unconditional model). Any result
    with `images` (N, C, H, W) and `labels` will do: a video's frames, a classifier's adversarial examples."""
    pixels = (image_array(generated.images) * 255).round().astype(np.uint8)  # (n, H, W), or (n, H, W, 3) in colour
    labels = generated.labels.tolist() if generated.labels is not None else [None] * len(pixels)
    return [
        s.ImageData(
            b64_json=base64.b64encode(png_bytes(np.ascontiguousarray(p), scale=1)).decode(),
            label=None if label is None else names[label],
        )
        for p, label in zip(pixels, labels)
    ]


def clip_data(clips: Any) -> list[s.AudioClip]:
    """Each clip (`waves`, `words`, `sample_rate`) as a 16-bit WAV, with what it says and its length."""
    rate = clips.sample_rate
    return [
        s.AudioClip(
            b64_json=base64.b64encode(wav_bytes(wave.detach().float().numpy(), rate)).decode(),
            words=words,
            seconds=round(len(wave) / rate, 4),
        )
        for wave, words in zip(clips.waves, clips.words)
    ]


def classification_data(answers: list[Any]) -> list[s.Classification]:
    """Each text's label with every label's probability (`scores`: (label, probability), likeliest first)."""
    return [
        s.Classification(
            index=i, label=a.label, scores=[s.LabelProbability(label=label, probability=p) for label, p in a.scores]
        )
        for i, a in enumerate(answers)
    ]
