"""Sample-quality metrics against closed forms and constructed cases; the shipped evaluator nets."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from genlab.data import load_image_dataset
from genlab.errors import GenlabError
from genlab.evaluation.classifier import WEIGHTS_DIR, accuracy, evaluator_info, load_evaluator, to_tensor
from genlab.evaluation.image_eval import evaluate_samples
from genlab.evaluation.metrics import (
    class_histogram,
    frechet_distance,
    frechet_distance_from_stats,
    inception_score,
    precision_recall,
)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("GENLAB_OFFLINE", "1")  # never wait on a download


def gaussian_fid(mu1, var1, mu2, var2) -> float:
    """Closed form for diagonal covariances: ||mu1 - mu2||^2 + sum (sqrt(v1) - sqrt(v2))^2."""
    return float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2))


def test_fid_from_stats_is_exact_for_diagonal_covariances():
    mu1, var1 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 2.0, 3.0])
    mu2, var2 = np.array([1.0, -1.0, 0.5]), np.array([4.0, 1.0, 0.5])
    fid = frechet_distance_from_stats(mu1, np.diag(var1), mu2, np.diag(var2))
    assert fid == pytest.approx(gaussian_fid(mu1, var1, mu2, var2), rel=1e-10)


def test_fid_of_samples_matches_closed_form_diagonal():
    rng = np.random.default_rng(0)
    mu1, var1 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 2.0, 3.0])
    mu2, var2 = np.array([1.0, -1.0, 0.5]), np.array([4.0, 1.0, 0.5])
    a = mu1 + rng.standard_normal((100_000, 3)) * np.sqrt(var1)
    b = mu2 + rng.standard_normal((100_000, 3)) * np.sqrt(var2)
    assert frechet_distance(a, b) == pytest.approx(gaussian_fid(mu1, var1, mu2, var2), rel=0.03)


def test_fid_of_samples_matches_closed_form_correlated():
    # S1 = 4 S2 commutes with S2, so (S1 S2)^(1/2) = 2 S2 and FID = ||d||^2 + tr(S2) with a full S2.
    rng = np.random.default_rng(1)
    factor = rng.standard_normal((4, 4))
    cov2 = factor @ factor.T + 0.5 * np.eye(4)
    mu1, mu2 = np.zeros(4), np.array([0.5, -0.5, 1.0, 0.0])
    a = rng.multivariate_normal(mu1, 4 * cov2, size=100_000)
    b = rng.multivariate_normal(mu2, cov2, size=100_000)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(cov2)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.03)


def test_fid_of_identical_sets_is_zero():
    feats = np.random.default_rng(2).standard_normal((2000, 16))
    assert frechet_distance(feats, feats.copy()) < 1e-6
    assert frechet_distance(feats, feats + 0.1) == pytest.approx(16 * 0.01, rel=1e-6)


def test_precision_recall_identical_and_disjoint():
    real = np.random.default_rng(3).standard_normal((500, 8))
    assert precision_recall(real, real.copy()) == (1.0, 1.0)
    assert precision_recall(real, real + 100.0) == (0.0, 0.0)


def test_precision_recall_half_the_modes():
    rng = np.random.default_rng(4)
    centres = np.array([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0], [50.0, 50.0]])
    real = np.concatenate([c + rng.standard_normal((300, 2)) for c in centres])
    fake = np.concatenate([c + rng.standard_normal((600, 2)) for c in centres[:2]])  # modes 2, 3 dropped
    precision, recall = precision_recall(real, fake, k=3)
    assert precision > 0.95
    assert 0.45 < recall <= 0.5
    # Batching only changes how distances are chunked, never the answer.
    assert precision_recall(real, fake, k=3, batch_size=7) == (precision, recall)


def test_inception_score_extremes():
    labels = np.arange(1000) % 10
    confident_uniform = np.eye(10)[labels]  # every split holds each class equally often
    mean, std = inception_score(confident_uniform, splits=10)
    assert mean == pytest.approx(10.0) and std == pytest.approx(0.0, abs=1e-12)
    same = np.tile(np.random.default_rng(5).dirichlet(np.ones(10)), (1000, 1))
    assert inception_score(same)[0] == pytest.approx(1.0)


def test_class_histogram_from_labels_and_probs():
    expected = [0.5, 0.25, 0.0, 0.25]
    assert class_histogram(np.array([0, 0, 1, 3]), 4).tolist() == expected
    probs = np.eye(4)[[0, 0, 1, 3]] * 0.7 + 0.075  # argmax still 0, 0, 1, 3
    assert class_histogram(probs, 4).tolist() == expected


def test_corrupted_or_missing_weights_raise(tmp_path):
    for suffix in (".safetensors", ".json"):
        shutil.copy(WEIGHTS_DIR / f"mnist{suffix}", tmp_path)
    load_evaluator("mnist", tmp_path)  # the intact copy loads
    weights = tmp_path / "mnist.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(GenlabError, match="sha256.*eval-nets train --data mnist"):
        load_evaluator("mnist", tmp_path)
    weights.unlink()
    with pytest.raises(GenlabError, match="missing"):
        load_evaluator("mnist", tmp_path)
    with pytest.raises(GenlabError, match="eval-nets train --data fashion-mnist"):
        load_evaluator("fashion-mnist", tmp_path)


@pytest.mark.parametrize("name, threshold", [("mnist", 0.95), ("fashion-mnist", 0.88)])
def test_shipped_evaluator_accuracy(name, threshold):
    data = load_image_dataset(name)
    evaluator = load_evaluator(name)
    images, labels = to_tensor(data.test_images[:500]), torch.from_numpy(data.test_labels[:500])
    assert accuracy(evaluator, images, labels) >= threshold
    assert evaluator_info(name)["test_accuracy"] >= threshold


def test_evaluate_real_test_split_against_itself():
    data = load_image_dataset("mnist")
    evaluator = load_evaluator("mnist")
    labels = torch.from_numpy(data.test_labels)
    result = evaluate_samples(to_tensor(data.test_images), data, evaluator, requested_labels=labels)
    assert result["fid"] < 1e-6
    assert (result["precision"], result["recall"]) == (1.0, 1.0)
    assert result["label_accuracy"] == pytest.approx(evaluator.info["test_accuracy"], abs=0.002)
    assert result["num_samples"] == result["num_real"] == 1000
    assert sum(result["class_histogram"].values()) == pytest.approx(1.0)
    assert result["min_class_fraction"] > 0.08  # the test split is balanced: 100 digits per class
