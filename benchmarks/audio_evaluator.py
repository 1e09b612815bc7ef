"""Measure the spoken-digits corpus and its evaluator: the figures quoted in docs/audio.md.

    python benchmarks/audio_evaluator.py --out benchmarks/results/audio_evaluator.json \
        --figure docs/img/spoken-digits-real.png

Reads (or first synthesizes) the corpus, loads the shipped evaluator, scores the real held-out clips with
`evaluate_clips` (the ceiling and the real-vs-real Fréchet floor a generator is compared with) and the
human recordings, and draws log-mel spectrograms of real clips: one held-out voice and the human, per digit.
The evaluator itself is trained by `genlab eval-nets train --data spoken-digits`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from genlab.data.audio import CORPUS, DIGITS, corpus_dir, load_audio_dataset
from genlab.evaluation.audio_eval import EMBED_BATCH, evaluate_clips, load_audio_evaluator, log_mel
from genlab.evaluation.classifier import features_and_probs
from genlab.io.files import atomic_write, atomic_write_text, read_json


def spectrogram_grid(rows: list[tuple[str, np.ndarray]], path: Path) -> None:
    """One row of ten log-mel spectrograms (digit 0..9) per (title, waves (10, 16000))."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 10, figsize=(16, 2.1 * len(rows)), squeeze=False)
    for r, (title, waves) in enumerate(rows):
        mels = log_mel(torch.from_numpy(waves))[:, 0].numpy()  # (10, n_mels, frames)
        for d in range(10):
            ax = axes[r, d]
            ax.imshow(mels[d], origin="lower", aspect="auto", cmap="magma", vmin=-12, vmax=mels.max())
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(DIGITS[d])
        axes[r, 0].set_ylabel(title, fontsize=8)
    fig.suptitle("spoken-digits: log-mel spectrograms (64 mels x 1 s), real clips", fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=80, format="png"))
    plt.close(fig)


def first_clip_per_digit(waves: np.ndarray, labels: np.ndarray, speakers: list[str], speaker: str) -> np.ndarray:
    """The first clip of each digit by `speaker` (its default rate/pitch), (10, 16000)."""
    return np.stack(
        [waves[next(i for i, (y, s) in enumerate(zip(labels, speakers)) if y == d and s == speaker)] for d in range(10)]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/audio_evaluator.json")
    parser.add_argument("--figure", default="docs/img/spoken-digits-real.png")
    parser.add_argument("--speaker", default="espeak-ng:en-gb-x-rp+m2", help="held-out voice to draw")
    args = parser.parse_args()

    start = time.perf_counter()
    test = load_audio_dataset(CORPUS, "test")
    human = load_audio_dataset(CORPUS, "human")
    load_seconds = time.perf_counter() - start
    manifest = read_json(corpus_dir() / "manifest.json")
    evaluator = load_audio_evaluator()
    start = time.perf_counter()
    real = evaluate_clips(test.waves, evaluator, requested_labels=test.labels, reference=test)
    score_seconds = time.perf_counter() - start
    human_pred = features_and_probs(evaluator, torch.from_numpy(human.waves), EMBED_BATCH)[1].argmax(axis=1)
    results = {
        "corpus": {
            "train_clips": manifest["splits"]["train"]["clips"],
            "test_clips": manifest["splits"]["test"]["clips"],
            "train_speakers": len(manifest["splits"]["train"]["speakers"]),
            "test_speakers": len(manifest["splits"]["test"]["speakers"]),
            "synthesis_seconds": manifest["synthesis_seconds"],
            "engines": manifest["engines"],
            "load_seconds_test_and_human": round(load_seconds, 2),
        },
        "evaluator": {
            k: evaluator.info[k]
            for k in (
                "test_accuracy",
                "human_accuracy",
                "human_predictions",
                "epochs",
                "seed",
                "train_seconds",
                "sha256",
                "command",
            )
        },
        "human_correct": int((human_pred == human.labels).sum()),
        "real_test_clips_vs_themselves": real,
        "score_seconds": round(score_seconds, 2),
    }
    atomic_write_text(args.out, json.dumps(results, indent=2) + "\n")
    spectrogram_grid(
        [
            (
                f"held-out voice\n{args.speaker}",
                first_clip_per_digit(test.waves, test.labels, test.speakers, args.speaker),
            ),
            ("human (Asterisk\nAllison, 8 kHz)", human.waves),
        ],
        Path(args.figure),
    )
    print(json.dumps(results, indent=2))
    print(f"wrote {args.out} and {args.figure}")


if __name__ == "__main__":
    main()
