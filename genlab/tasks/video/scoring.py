"""`genlab eval` of a video run: each of the three uses on held-out clips, beside the baselines and real clips.

- predict: the 10 frames after the first 10; MSE and SSIM per frame against copying the last given frame;
- between: the 18 frames between the first and the last; against a cross-fade of the two;
- generate: clips asked for the held-out clips' digit pairs; the pair reader names the two digits of each
  frame (pair accuracy) and of each clip, Fréchet distances of whole frames (in the pair reader's features)
  and of the digit windows (in the MNIST evaluator's) against the held-out clips, and the tracked digits'
  speed between bounces. Real clips of training digits are scored the same way:
  their Fréchet distance is the floor a perfect generator reaches with this many clips, and their reading
  and tracking scores are what the reader itself gets right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from genlab.data.moving_mnist import Clips
from genlab.evaluation import video_eval
from genlab.evaluation.classifier import ImageClassifier
from genlab.evaluation.metrics import frechet_distance
from genlab.evaluation.pair_reader import read_pairs
from genlab.models.video_unet import ClipNetwork
from genlab.tasks.video.pipeline import draw, to_model, to_pixels
from genlab.tasks.video.process import mode_mask


@dataclass(frozen=True)
class Uses:
    """How the uses are drawn: the network, the prediction context, the sampler settings, the noise seed."""

    net: ClipNetwork
    context: int
    steps: int
    guidance: float
    seed: int
    batch_size: int

    def draw(self, mode: str, real: torch.Tensor, digits: torch.Tensor | None = None) -> torch.Tensor:
        """Clips (N, T, S, S) in [0, 1] for `mode`, given the frames of `real` (model scale) it keeps."""
        mask = mode_mask(mode, real.size(1), self.context).expand(real.size(0), -1)
        return draw(self.net, self.seed, real, mask, digits, self.steps, self.guidance, self.batch_size)


def curve(pred: torch.Tensor, real: torch.Tensor) -> dict[str, Any]:
    """MSE and SSIM of the frames `pred` made, mean and per frame (N, T', S, S) in [0, 1]."""
    mse, ssim = video_eval.frame_mse(pred, real), video_eval.ssim(pred, real)
    return {
        "mse": mse.mean().item(),
        "ssim": ssim.mean().item(),
        "mse_per_frame": [round(v, 6) for v in mse.tolist()],
        "ssim_per_frame": [round(v, 4) for v in ssim.tolist()],
    }


def score_predict(uses: Uses, real: torch.Tensor) -> dict[str, Any]:
    c = uses.context
    pixels = to_pixels(real)
    made = uses.draw("predict", real)[:, c:]
    copy_last = pixels[:, c - 1 : c].expand_as(made)
    return {**curve(made, pixels[:, c:]), "copy_last_frame": curve(copy_last, pixels[:, c:])}


def score_between(uses: Uses, real: torch.Tensor) -> dict[str, Any]:
    pixels = to_pixels(real)
    made = uses.draw("between", real)[:, 1:-1]
    w = torch.linspace(0, 1, real.size(1))[1:-1, None, None]  # (T-2, 1, 1): the cross-fade's weights
    fade = (1 - w) * pixels[:, :1] + w * pixels[:, -1:]
    return {**curve(made, pixels[:, 1:-1]), "cross_fade": curve(fade, pixels[:, 1:-1])}


@dataclass(frozen=True)
class Judges:
    """What reads the clips: the Moving-MNIST pair reader and the MNIST evaluator (for the digit windows)."""

    reader: ImageClassifier
    evaluator: ImageClassifier


def reading(clips: torch.Tensor, digits: torch.Tensor, judges: Judges) -> dict[str, Any]:
    probs, frame_features = read_pairs(judges.reader, clips)
    located = video_eval.digit_windows(clips, judges.evaluator)
    return {
        **video_eval.pair_scores(probs, digits),
        "motion": video_eval.motion(located["centroids"], clips.size(-1)),
        "digit_features": located["features"],
        "frame_features": frame_features,
    }


def score_generate(uses: Uses, test: Clips, train: Clips, judges: Judges) -> dict[str, Any]:
    size = uses.net.config.size
    digits = torch.from_numpy(test.digits)
    made = reading(uses.draw("generate", to_model(test.frames, size), digits), digits, judges)
    held_out = reading(to_pixels(to_model(test.frames, size)), digits, judges)
    other = reading(to_pixels(to_model(train.frames, size)), torch.from_numpy(train.digits), judges)

    def distances(x: dict[str, Any]) -> dict[str, float]:
        return {
            "frame_fid": frechet_distance(x["frame_features"], held_out["frame_features"]),
            "digit_fid": frechet_distance(x["digit_features"], held_out["digit_features"]),
        }

    scores = ("pair_accuracy", "clip_accuracy", "motion")
    summary = {key: made[key] for key in scores}
    real = {**{key: held_out[key] for key in scores}, **distances(other)}
    return {**summary, **distances(made), "real_clips": real}


def score_uses(uses: Uses, test: Clips, train: Clips, judges: Judges) -> dict[str, Any]:
    real = to_model(test.frames, uses.net.config.size)  # (N, T, S, S) in [-1, 1]
    return {
        "predict": score_predict(uses, real),
        "between": score_between(uses, real),
        "generate": score_generate(uses, test, train, judges),
    }
