"""Sample-quality metrics on feature / probability arrays: pure functions of numpy float64 arrays.

FID (Heusel et al. 2017), improved precision & recall (Kynkäänniemi et al. 2019), an Inception-Score
style score (Salimans et al. 2016) and class histograms. Which network made the features is the
caller's business (genlab uses a small per-dataset classifier, see classifier.py).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from genlab.errors import GenlabError


def _check_features(name: str, feats: np.ndarray, min_rows: int) -> np.ndarray:
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or len(feats) < min_rows:
        raise GenlabError(f"{name} must be (N, D) with N >= {min_rows}, got shape {feats.shape}")
    if not np.isfinite(feats).all():  # a NaN covariance would send sqrtm into minutes of futile work
        raise GenlabError(f"{name} holds non-finite values (NaN or inf): the samples they come from are broken")
    return feats


def frechet_distance_from_stats(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians."""
    if not all(np.isfinite(a).all() for a in (mu1, sigma1, mu2, sigma2)):
        raise GenlabError("FID: the feature statistics hold non-finite values (NaN or inf)")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        # Post-ReLU features have dead units, so singular covariances are normal here; what matters
        # is whether the root came out finite and (nearly) real, which is checked below.
        from scipy import linalg  # a quarter of a second to import: only FID needs it

        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            # Fewer samples than dimensions can break sqrtm: regularise as pytorch-fid does.
            offset = np.eye(len(sigma1)) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # sqrtm of a PSD product is real; small imaginary parts are round-off, large ones a bug.
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise GenlabError(f"FID: matrix square root has imaginary part {np.abs(covmean.imag).max():.3g}")
        covmean = covmean.real
    fid = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)
    return float(max(fid, 0.0))  # identical sets give round-off around 0, never a true negative


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """FID between two feature sets (N, D) and (M, D), each summarised by its mean and covariance."""
    feats_a, feats_b = _check_features("feats_a", feats_a, 2), _check_features("feats_b", feats_b, 2)
    if feats_a.shape[1] != feats_b.shape[1]:
        raise GenlabError(f"FID: feature dims differ ({feats_a.shape[1]} vs {feats_b.shape[1]})")
    return frechet_distance_from_stats(
        feats_a.mean(0), np.cov(feats_a, rowvar=False), feats_b.mean(0), np.cov(feats_b, rowvar=False)
    )


def _knn_radii(feats: torch.Tensor, k: int, batch_size: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point. (N,)"""
    # k + 1 because every point is its own nearest neighbour at distance 0.
    return torch.cat(
        [
            torch.cdist(feats[i : i + batch_size], feats).kthvalue(k + 1, dim=1).values
            for i in range(0, len(feats), batch_size)
        ]
    )


def _inside_any_ball(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, batch_size: int) -> float:
    """Fraction of points within radius of at least one centre."""
    inside = [
        (torch.cdist(points[i : i + batch_size], centres) <= radii[None, :]).any(dim=1)  # (b,)
        for i in range(0, len(points), batch_size)
    ]
    return torch.cat(inside).double().mean().item()


def precision_recall(
    real_feats: np.ndarray, fake_feats: np.ndarray, k: int = 3, batch_size: int = 1000
) -> tuple[float, float]:
    """Improved precision and recall: each set's support is the union of its k-NN balls.

    precision = fraction of fake samples inside the real support (realism);
    recall = fraction of real samples inside the fake support (coverage).
    Distances are taken batch_size rows at a time: 10k x 10k needs only 10k x batch_size floats.
    They are float32: twice as fast as float64, and ball membership does not hinge on the last bits.
    """
    real = torch.from_numpy(_check_features("real_feats", real_feats, k + 1)).float()
    fake = torch.from_numpy(_check_features("fake_feats", fake_feats, k + 1)).float()
    if real.shape[1] != fake.shape[1]:
        raise GenlabError(f"precision/recall: feature dims differ ({real.shape[1]} vs {fake.shape[1]})")
    precision = _inside_any_ball(fake, real, _knn_radii(real, k, batch_size), batch_size)
    recall = _inside_any_ball(real, fake, _knn_radii(fake, k, batch_size), batch_size)
    return precision, recall


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) per split of the samples: (mean, std) over splits.

    Ranges from 1 (every sample gets the same prediction) to num_classes (confident and balanced).
    """
    from scipy.special import rel_entr  # scipy on first use: `import genlab` stays light

    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) < splits:
        raise GenlabError(f"inception score needs (N, C) probabilities with N >= splits={splits}, got {probs.shape}")
    scores = []
    for part in np.array_split(probs, splits):
        marginal = part.mean(axis=0, keepdims=True)  # (1, C) = p(y) within the split
        # rel_entr is p log(p/q) with 0 log 0 = 0, so one-hot predictions need no epsilon.
        scores.append(np.exp(rel_entr(part, marginal).sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def class_histogram(probs_or_labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Fraction of samples per class (num_classes,); probabilities (N, C) count as their argmax."""
    values = np.asarray(probs_or_labels)
    labels = values.argmax(axis=1) if values.ndim == 2 else values.astype(np.int64)
    if len(labels) == 0:
        raise GenlabError("class histogram of zero samples")
    return np.bincount(labels, minlength=num_classes)[:num_classes] / len(labels)
