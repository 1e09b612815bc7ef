"""The spoken-digit evaluator: front end, augmentation, scores on constructed inputs, shipped weights."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch import nn

from genlab.cli import main
from genlab.data.audio import DIGITS, HUMAN_DIR, AudioData, load_audio_dataset
from genlab.errors import GenlabError
from genlab.evaluation import audio_eval
from genlab.evaluation.audio_eval import (
    FRAMES,
    N_MELS,
    AudioClassifier,
    AudioClassifierConfig,
    augment,
    evaluate_clips,
    load_audio_evaluator,
    log_mel,
    mel_filters,
)
from genlab.evaluation.classifier import WEIGHTS_DIR, features_and_probs


class Oracle(nn.Module):
    """An evaluator that reads the digit from sample 0 (label / 10) and is certain of it. Features:
    a scaled one-hot of the digit and 5 samples of the clip, so sets of clips have a spread."""

    def __init__(self, confident: bool = True):
        super().__init__()
        self.config = AudioClassifierConfig(feature_dim=15)
        self.head = nn.Linear(15, 10, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.cat([torch.eye(10) * (1.0 if confident else 0.0), torch.zeros(10, 5)], 1))
        self.info = {"sha256": f"oracle-{confident}"}

    def features(self, waves: torch.Tensor) -> torch.Tensor:
        digit = (waves[:, 0] * 10).round().long()
        return torch.cat([nn.functional.one_hot(digit, 10).float() * 30, waves[:, 1:6]], dim=1)  # (B, 15)


def clips(labels: list[int], seed: int = 0) -> np.ndarray:
    waves = np.random.default_rng(seed).uniform(-0.5, 0.5, (len(labels), 16000)).astype(np.float32)
    waves[:, 0] = np.array(labels) / 10
    return waves


def reference(labels: list[int], seed: int = 1) -> AudioData:
    return AudioData(
        "ref",
        f"constructed {seed}",
        clips(labels, seed),
        np.array(labels, dtype=np.int64),
        [f"spk{i // 10 % 4}" for i in range(len(labels))],
    )


BALANCED = [i % 10 for i in range(100)]


def test_log_mel_shape_and_gradient():
    assert mel_filters() is mel_filters() and mel_filters().shape == (N_MELS, 257)
    waves = torch.zeros(2, 16000, requires_grad=True)
    features = log_mel(waves + 0.1 * torch.sin(torch.arange(16000) * 0.3))
    assert features.shape == (2, 1, N_MELS, FRAMES) and torch.isfinite(features).all()
    features.sum().backward()
    assert waves.grad is not None and torch.isfinite(waves.grad).all()
    assert torch.isfinite(log_mel(torch.zeros(1, 16000))).all()  # silence is the floor, not -inf


def test_augment_is_deterministic_and_bounded():
    waves = torch.from_numpy(clips(BALANCED[:8]))
    a = augment(waves, torch.Generator().manual_seed(3))
    assert a.shape == waves.shape and a.abs().max() <= 1
    assert torch.equal(a, augment(waves, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, augment(waves, torch.Generator().manual_seed(4)))


def test_classifier_shapes():
    model = AudioClassifier(AudioClassifierConfig()).eval()
    with torch.no_grad():
        assert model.features(torch.zeros(3, 16000)).shape == (3, 128)
        assert model(torch.zeros(3, 16000)).shape == (3, 10)


def test_perfect_clips_score_like_the_reference():
    ref = reference(BALANCED)
    result = evaluate_clips(ref.waves, Oracle(), requested_labels=np.array(BALANCED), reference=ref)
    assert result["accuracy"] == 1.0
    assert result["frechet_distance"] < 1e-6  # a set against itself
    assert result["inception_score"]["mean"] == pytest.approx(10, rel=1e-3)
    assert result["label_histogram"] == {d: 0.1 for d in DIGITS}
    ceiling = result["ceiling"]
    assert ceiling["accuracy"] == 1.0 and ceiling["inception_score"]["mean"] == pytest.approx(10, rel=1e-3)
    assert 0 <= ceiling["frechet_distance"] < 1.0  # speaker-disjoint halves of the same distribution
    shifted = evaluate_clips(ref.waves, Oracle(), requested_labels=(np.array(BALANCED) + 1) % 10, reference=ref)
    assert shifted["accuracy"] == 0.0


def test_one_digit_and_unsure_sets():
    ref = reference(BALANCED)
    threes = evaluate_clips(clips([3] * 50), Oracle(), reference=ref)
    assert threes["accuracy"] is None
    assert threes["label_histogram"]["three"] == 1.0 and threes["min_label_fraction"] == 0.0
    assert threes["inception_score"]["mean"] == pytest.approx(1, abs=1e-6)
    assert threes["frechet_distance"] > 100  # one mode of ten
    unsure = evaluate_clips(clips(BALANCED), Oracle(confident=False), reference=ref)
    assert unsure["inception_score"]["mean"] == pytest.approx(1, abs=1e-6)  # uniform p(y|x)


def test_bad_clips_are_one_line():
    ref = reference(BALANCED)
    bad = {
        "shape \\(N, 16000\\), got \\(4, 8000\\)": np.zeros((4, 8000), dtype=np.float32),
        "non-finite": np.full((4, 16000), np.nan, dtype=np.float32),
        "lie in \\[-1, 1\\]": np.full((4, 16000), 2.0, dtype=np.float32),
    }
    for message, waves in bad.items():
        with pytest.raises(GenlabError, match=message):
            evaluate_clips(waves, Oracle(), reference=ref)
    with pytest.raises(GenlabError, match="requested_labels must have shape"):
        evaluate_clips(clips([1, 2]), Oracle(), requested_labels=np.array([1]), reference=ref)


def test_shipped_evaluator_loads_and_refuses_tampering(tmp_path):
    model = load_audio_evaluator()
    assert model.info["test_accuracy"] >= 0.97 and model.info["dataset"] == "spoken-digits"
    for suffix in (".safetensors", ".json"):
        shutil.copy(WEIGHTS_DIR / f"spoken-digits{suffix}", tmp_path)
    weights = tmp_path / "spoken-digits.safetensors"
    payload = bytearray(weights.read_bytes())
    payload[-1] ^= 1
    weights.write_bytes(bytes(payload))
    with pytest.raises(GenlabError, match="do not match the sha256"):
        load_audio_evaluator(tmp_path)
    weights.unlink()
    with pytest.raises(GenlabError, match="missing; run `genlab eval-nets train --data spoken-digits`"):
        load_audio_evaluator(tmp_path)


@pytest.mark.skipif(not HUMAN_DIR.is_dir(), reason="needs Debian asterisk-core-sounds-en-wav")
def test_shipped_evaluator_reproduces_its_human_score():
    model = load_audio_evaluator()
    human = load_audio_dataset("spoken-digits", "human")
    probs = features_and_probs(model, torch.from_numpy(human.waves), audio_eval.EMBED_BATCH)[1]
    assert [DIGITS[p] for p in probs.argmax(1)] == model.info["human_predictions"]


def test_eval_nets_lists_the_audio_evaluator(capsys):
    assert main(["eval-nets", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("spoken-digits"))
    assert "test accuracy" in row and "human recordings" in row
