"""Scores for clips of moving digits (N, T, H, W) in [0, 1], task-free: pixel error and SSIM per frame, the
digit pair a Moving-MNIST reader sees in each frame, Fréchet distances, and motion.

Which two digits a frame shows is read by genlab's pair reader (genlab.evaluation.pair_reader), which
reads a whole frame, overlapping digits included. Where the digits are, generated clips do not say, so
they are found the same way in real and generated clips: in each frame the window of a digit's size
(28/64 of the side) holding the most ink, then the most inked window that overlaps it by less than half
(`locate_digits`). Their ink centroids, linked from frame to frame to the nearer digit of the frame
before (`tracks`), give the motion scores; the windows, scaled to 28x28, the MNIST evaluator's features.
Every score is also reported for real held-out clips read the same way: what the readers and the
tracker themselves get right.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from genlab.evaluation.classifier import ImageClassifier, features_and_probs
from genlab.evaluation.pair_reader import pair_index

SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2  # Wang et al. 2004, for pixels in [0, 1]


def frame_mse(pred: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """(N, T, H, W) x2 -> (T,) mean squared error per frame over clips and pixels."""
    return (pred - real).pow(2).mean(dim=(0, 2, 3))


def ssim(pred: torch.Tensor, real: torch.Tensor, window: int = 7, sigma: float = 1.5) -> torch.Tensor:
    """(N, T, H, W) x2 in [0, 1] -> (T,) mean SSIM per frame (Gaussian window, Wang et al. 2004)."""
    n, t, h, w = pred.shape
    g = torch.exp(-((torch.arange(window) - window // 2) ** 2) / (2 * sigma**2))
    kernel = (g[:, None] * g[None]) / g.sum() ** 2  # (window, window), sums to 1
    kernel = kernel[None, None].to(pred.dtype)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x.reshape(n * t, 1, h, w), kernel)  # valid windows only

    mu_a, mu_b = blur(pred), blur(real)
    var_a = blur(pred * pred) - mu_a**2
    var_b = blur(real * real) - mu_b**2
    cov = blur(pred * real) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)) / (
        (mu_a**2 + mu_b**2 + SSIM_C1) * (var_a + var_b + SSIM_C2)
    )
    return index.reshape(n, t, -1).mean(dim=(0, 2))


def locate_digits(frames: torch.Tensor, side: int) -> torch.Tensor:
    """(M, H, W) -> (M, 2, 2) integer top-left corners (y, x) of two digit windows, in `frames` padded by
    `margin(side)` on every side: the window is centred on the most inked core (the 20x20 of 28 where
    MNIST's ink lies), the second core overlapping the first by less than a quarter of its side."""
    core = side - 2 * margin(side)
    ink = F.avg_pool2d(frames[:, None], core, stride=1)[:, 0]  # (M, H-core+1, W-core+1)
    m, hh, ww = ink.shape
    first = ink.reshape(m, -1).argmax(1)
    fy, fx = first // ww, first % ww
    ys, xs = torch.arange(hh)[None, :, None], torch.arange(ww)[None, None, :]
    reach = 3 * core // 4
    near = ((ys - fy[:, None, None]).abs() < reach) & ((xs - fx[:, None, None]).abs() < reach)
    second = ink.masked_fill(near, -1).reshape(m, -1).argmax(1)
    # a core at (y, x) of the frame is a window at (y, x) of the frame padded by the margin
    return torch.stack([torch.stack([fy, fx], 1), torch.stack([second // ww, second % ww], 1)], 1)


def margin(side: int) -> int:
    """The empty border of an MNIST digit's box: 4 of 28 pixels."""
    return round(side * 4 / 28)


def windows(frames: torch.Tensor, corners: torch.Tensor, side: int) -> torch.Tensor:
    """(M, H, W), (M, 2, 2) corners in the padded frame (locate_digits) -> (M, 2, side, side)."""
    pad = margin(side)
    frames = F.pad(frames, (pad, pad, pad, pad))
    y = corners[..., 0, None] + torch.arange(side)  # (M, 2, side)
    x = corners[..., 1, None] + torch.arange(side)
    m = torch.arange(frames.size(0))[:, None, None, None]
    return frames[m, y[..., :, None], x[..., None, :]]


def crops(frames: torch.Tensor, corners: torch.Tensor, side: int) -> torch.Tensor:
    """(M, H, W), (M, 2, 2) -> (M * 2, 1, 28, 28): each window scaled to the evaluator's 28x28."""
    w = windows(frames, corners, side).reshape(-1, 1, side, side)
    return F.interpolate(w, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)


def centroids(frames: torch.Tensor, corners: torch.Tensor, side: int) -> torch.Tensor:
    """(M, H, W), (M, 2, 2) -> (M, 2, 2) float: the ink centroid (y, x) of each window, in frame pixels."""
    w = windows(frames, corners, side)  # (M, 2, side, side)
    rows = torch.arange(side, dtype=frames.dtype)
    mass = w.sum(dim=(-1, -2)).clamp(min=1e-6)
    cy = (w.sum(-1) * rows).sum(-1) / mass
    cx = (w.sum(-2) * rows).sum(-1) / mass
    return corners.to(frames.dtype) - margin(side) + torch.stack([cy, cx], -1)


def digit_side(frame_side: int) -> int:
    """A Moving-MNIST digit's side at a frame side: 28 of 64."""
    return round(28 * frame_side / 64)


def digit_windows(clips: torch.Tensor, evaluator: ImageClassifier) -> dict[str, torch.Tensor]:
    """Clips (N, T, H, W) -> the located digits' centroids (N, T, 2, 2) and the MNIST evaluator's features
    of their windows (N*T*2, D)."""
    n, t, h, _ = clips.shape
    side = digit_side(h)
    frames = clips.reshape(n * t, h, h).float()
    corners = locate_digits(frames, side)
    return {
        "centroids": centroids(frames, corners, side).reshape(n, t, 2, 2),
        "features": features_and_probs(evaluator, crops(frames, corners, side))[0],
    }


def pair_scores(probs: np.ndarray, asked: torch.Tensor) -> dict[str, float]:
    """The pair reader's probabilities (N, T, 55) for clips asked for the digits (N, 2): the share of frames
    read as the asked pair, and of clips whose frames together (the sum of their log-probabilities) are."""
    target = pair_index(asked).numpy()  # (N,)
    clip_vote = np.log(np.clip(probs, 1e-12, None)).sum(1).argmax(-1)  # (N,)
    return {
        "pair_accuracy": float((probs.argmax(-1) == target[:, None]).mean()),
        "clip_accuracy": float((clip_vote == target).mean()),
    }


def tracks(points: torch.Tensor) -> torch.Tensor:
    """Centroids (N, T, 2, 2) -> the same, with each frame's two digits ordered so that each stays
    nearest its own position in the frame before."""
    out = points.clone()
    for i in range(1, points.size(1)):
        keep = (out[:, i] - out[:, i - 1]).norm(dim=-1).sum(-1)  # (N,)
        swap = (out[:, i].flip(1) - out[:, i - 1]).norm(dim=-1).sum(-1)
        out[:, i] = torch.where((swap < keep)[:, None, None], out[:, i].flip(1), out[:, i])
    return out


def motion(points: torch.Tensor, frame_side: int) -> dict[str, float | None]:
    """Speeds of tracked digits (N, T, 2, 2) between bounces: steps away from the walls (both ends more
    than 2 px from where a digit's centre turns back) and from the other digit (centres more than 3/4 of
    a digit's side apart, where the windows cannot mix them up). `speed_deviation`: mean |speed - the
    track's median speed| / that median, over tracks with >= 3 such steps (0 = constant speed); `speed`:
    their mean speed, pixels per frame."""
    side = digit_side(frame_side)
    tracked = tracks(points)
    lo, hi = side / 2 + 2, frame_side - side / 2 - 2  # a digit's centre turns back near side/2 of a wall
    inside = ((tracked > lo) & (tracked < hi)).all(-1)  # (N, T, 2)
    apart = (tracked[:, :, 0] - tracked[:, :, 1]).abs().max(-1).values > 0.75 * side  # (N, T)
    ok = inside & apart[..., None]
    valid = ok[:, 1:] & ok[:, :-1]  # (N, T-1, 2)
    speed = (tracked[:, 1:] - tracked[:, :-1]).norm(dim=-1)  # (N, T-1, 2)
    deviations, speeds = [], []
    for s, v in zip(
        speed.permute(0, 2, 1).reshape(-1, speed.size(1)), valid.permute(0, 2, 1).reshape(-1, speed.size(1))
    ):
        if v.sum() >= 3:
            median = s[v].median().clamp(min=1e-6)
            deviations.append(((s[v] - median).abs() / median).mean().item())
            speeds.append(s[v].mean().item())
    return {
        "speed_deviation": float(np.mean(deviations)) if deviations else None,
        "speed": float(np.mean(speeds)) if speeds else None,
        "tracks_scored": len(deviations),
    }
