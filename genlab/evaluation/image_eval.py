"""Score generated images against a dataset's test split in the feature space of its evaluator CNN."""

from __future__ import annotations

import numpy as np
import torch

from genlab.data import ImageData
from genlab.errors import GenlabError
from genlab.evaluation.classifier import ImageClassifier, features_and_probs, to_tensor
from genlab.evaluation.metrics import class_histogram, frechet_distance, inception_score, precision_recall

# Test-split features per (dataset, source, evaluator checksum): every evaluation in a run reuses them.
_REAL_CACHE: dict[tuple[str, str, str], np.ndarray] = {}


def real_features(dataset: ImageData, evaluator: ImageClassifier, batch_size: int = 500) -> np.ndarray:
    key = (dataset.name, dataset.source, evaluator.info.get("sha256", str(id(evaluator))))
    if key not in _REAL_CACHE:
        _REAL_CACHE[key] = features_and_probs(evaluator, to_tensor(dataset.test_images), batch_size)[0]
    return _REAL_CACHE[key]  # (N_test, D)


def _check_samples(fake_images: torch.Tensor, dataset: ImageData, evaluator: ImageClassifier) -> None:
    if fake_images.ndim != 4 or tuple(fake_images.shape[1:]) != (1, 28, 28):
        raise GenlabError(f"samples must have shape (N, 1, 28, 28), got {tuple(fake_images.shape)}")
    if not torch.isfinite(fake_images).all():  # NaN passes every range comparison: check it first
        raise GenlabError("samples hold non-finite values (NaN or inf): the generator has diverged")
    if fake_images.min() < 0 or fake_images.max() > 1:
        raise GenlabError("samples must lie in [0, 1]")
    if evaluator.info.get("dataset", dataset.name) != dataset.name:
        raise GenlabError(f"evaluator was trained on {evaluator.info['dataset']}, not {dataset.name}")


def evaluate_samples(
    fake_images: torch.Tensor,
    dataset: ImageData,
    evaluator: ImageClassifier,
    requested_labels: torch.Tensor | None = None,
    batch_size: int = 500,
) -> dict:
    """FID, precision/recall (k=3), Inception-style score and class histogram of fake_images (N, 1, 28, 28).

    With requested_labels (N,) (a conditional generator), also label_accuracy: how often the evaluator
    recognises the class that was asked for. Returns plain floats/dicts, ready for json.
    """
    _check_samples(fake_images, dataset, evaluator)
    fake_feats, fake_probs = features_and_probs(evaluator, fake_images.detach().cpu(), batch_size)
    real_feats = real_features(dataset, evaluator, batch_size)
    # Improved precision/recall compare equal-sized sets (Kynkäänniemi et al. use 50k vs 50k): with
    # 10x more fakes than reals the fakes' k-NN balls shrink and recall collapses for no real reason.
    n_pr = min(len(real_feats), len(fake_feats))
    precision, recall = precision_recall(real_feats[:n_pr], fake_feats[:n_pr], k=3)
    is_mean, is_std = inception_score(fake_probs, splits=min(10, len(fake_probs)))
    histogram = class_histogram(fake_probs, dataset.num_classes)
    result = {
        "fid": frechet_distance(real_feats, fake_feats),
        "precision": precision,
        "recall": recall,
        "inception_score": {"mean": is_mean, "std": is_std},
        "class_histogram": {name: float(f) for name, f in zip(dataset.class_names, histogram)},
        # A dropped mode shows up as a class the generator (almost) never produces.
        "min_class_fraction": float(histogram.min()),
        "num_samples": len(fake_images),
        "num_real": len(real_feats),
        "precision_recall_samples": n_pr,
        "evaluator": {
            "dataset": evaluator.info.get("dataset", dataset.name),
            "sha256": evaluator.info.get("sha256"),
            "test_accuracy": evaluator.info.get("test_accuracy"),
        },
    }
    if requested_labels is not None:
        if requested_labels.shape != (len(fake_images),):
            raise GenlabError(
                f"requested_labels must have shape ({len(fake_images)},), got {tuple(requested_labels.shape)}"
            )
        predicted = fake_probs.argmax(axis=1)
        result["label_accuracy"] = float((predicted == requested_labels.cpu().numpy()).mean())
    return result


def quality_details(quality: dict) -> str:
    """The second opinion on an image run's FID in a `genlab report` row: precision, recall and the rarest
    class, and how many samples were scored (FID is biased upward at fewer samples, so it belongs beside it)."""
    return (
        f"P {quality['precision']:.2f}, R {quality['recall']:.2f}, rarest class "
        f"{100 * quality['min_class_fraction']:.1f} %, {quality['num_samples']:,} samples"
    )


QUICK_KEYS = ("fid", "precision", "recall", "min_class_fraction", "label_accuracy")


def quick_quality(
    fake_images: torch.Tensor, dataset: ImageData, evaluator: ImageClassifier, requested_labels: torch.Tensor | None
) -> dict[str, float]:
    """A training's per-period scores of its samples, as `quality/<name>` metrics (the scalars of
    evaluate_samples: FID, precision, recall, the rarest class's share and, if labels were asked for,
    label accuracy)."""
    quality = evaluate_samples(fake_images, dataset, evaluator, requested_labels=requested_labels)
    return {f"quality/{k}": quality[k] for k in QUICK_KEYS if k in quality}
