"""Conditional flow matching with the straight (rectified-flow) path: the process, apart from the network.

Noise x0 ~ N(0, I) and data x1 are joined by the straight line x_t = (1 - t) x0 + t x1, t in [0, 1],
whose velocity is x1 - x0 (Lipman et al. 2022, Liu et al. 2022). The network v(x_t, t, c) learns it by
regression; sampling integrates dx/dt = v from noise at t = 0 to data at t = 1 with a few Euler steps.

Classifier-free guidance (Ho & Salimans 2021): the condition is dropped from a fraction of training
rows, so one network gives v(x, t, c) and v(x, t, null); sampling follows
v_u + w (v_c - v_u): w = 0 is the unconditional flow, w = 1 the conditional one, w > 1 sharpens it.

Nothing here knows images: any tensor (B, ...) works (the tests use 2-D points; spectrograms fit).
A `model` is any callable (x, t, cond, drop) -> velocity shaped like x.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

Velocity = Callable[..., torch.Tensor]  # model(x, t, cond, drop) -> (B, ...)


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The straight path's point at time t (B,): (1 - t) x0 + t x1, shaped like x0."""
    t = t.view(-1, *([1] * (x0.dim() - 1)))
    return (1 - t) * x0 + t * x1


def sample_times(n: int, generator: torch.Generator, logit_normal: bool = True) -> torch.Tensor:
    """(n,) training times in (0, 1). Logit-normal (Esser et al. 2024, SD3) puts more of them mid-path,
    where the velocity is hardest to predict, and fewer at the ends, where it is nearly x1 or -x0."""
    if logit_normal:
        return torch.sigmoid(torch.randn(n, generator=generator))
    return torch.rand(n, generator=generator)


def flow_matching_loss(
    model: Velocity,
    x1: torch.Tensor,
    cond: torch.Tensor | None,
    generator: torch.Generator,
    cond_dropout: float = 0.0,
    logit_normal: bool = True,
) -> torch.Tensor:
    """Mean squared error between v(x_t, t, c) and the path's velocity x1 - x0, for data x1 (B, ...).

    Every draw (noise, times, which rows lose their condition) comes from `generator`, made on the CPU
    so that a run draws the same numbers on any device."""
    n = len(x1)
    x0 = torch.randn(x1.shape, generator=generator).to(x1.device)
    t = sample_times(n, generator, logit_normal).to(x1.device)
    drop = (torch.rand(n, generator=generator) < cond_dropout).to(x1.device) if cond is not None else None
    prediction = model(interpolate(x0, x1, t), t, cond, drop)
    return (prediction - (x1 - x0)).pow(2).mean()


@dataclass(frozen=True)
class Start:
    """Where an image-to-image sample starts: from `image` x1 (B, ...) re-noised back to time
    1 - strength (SDEdit, Meng et al. 2021); with `mask` (B or 1, ...) of 1 where new content goes and 0
    where the image is kept, the kept part is put back on its own path after every step (inpainting)."""

    image: torch.Tensor
    strength: float = 1.0
    mask: torch.Tensor | None = None


def guided_velocity(
    model: Velocity, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None, guidance: float
) -> torch.Tensor:
    """v_u + w (v_c - v_u). w = 1 (or no condition) needs one network evaluation, w = 0 one
    (unconditional), any other w two, made as one batch of 2B."""
    if cond is None or guidance == 1:
        return model(x, t, cond, None)
    if guidance == 0:
        return model(x, t, cond, torch.ones(x.size(0), dtype=torch.bool, device=x.device))
    drop = torch.arange(2 * x.size(0), device=x.device) >= x.size(0)  # (2B,): the second half unconditional
    both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond, cond]), drop)  # (2B, ...)
    v_cond, v_uncond = both[: x.size(0)], both[x.size(0) :]  # slices, not chunk(2): an exported batch stays dynamic
    return v_uncond + guidance * (v_cond - v_uncond)


def evaluations_per_sample(steps: int, guidance: float, conditional: bool, strength: float = 1.0) -> int:
    """Network evaluations one sample costs (a guided step evaluates the network twice)."""
    per_step = 2 if conditional and guidance not in (0, 1) else 1
    return per_step * euler_steps(steps, strength)


def euler_steps(steps: int, strength: float = 1.0) -> int:
    """Steps actually taken when starting at 1 - strength: the same step size as a full path."""
    return max(1, math.ceil(steps * strength - 1e-9))


@torch.no_grad()
def sample(
    model: Velocity,
    noise: torch.Tensor,
    steps: int,
    cond: torch.Tensor | None = None,
    guidance: float = 1.0,
    start: Start | None = None,
    constrain: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Integrate dx/dt = v from `noise` (B, ...) at t0 to t = 1 with Euler steps; returns x at t = 1.

    t0 = 0, or 1 - start.strength for image-to-image. Deterministic given `noise`.
    `constrain` maps an estimate of the data x1 to the nearest one that agrees with a measurement (for
    super-resolution: the low-resolution image). Each step then estimates both ends of the straight
    line through x, x1 = x + (1 - t) v and x0 = x - t v, constrains x1 and steps along the line between
    them (without `constrain` this is exactly the Euler step); the last step returns a constrained x1.
    """
    t0 = 0.0 if start is None else 1.0 - start.strength
    n_steps = euler_steps(steps, 1.0 - t0)
    times = torch.linspace(t0, 1.0, n_steps + 1).tolist()
    x = noise if start is None else interpolate(noise, start.image, torch.full((noise.size(0),), t0))
    for t_now, t_next in zip(times[:-1], times[1:]):
        v = guided_velocity(model, x, x.new_full((x.size(0),), t_now), cond, guidance)
        if constrain is None:
            x = x + (t_next - t_now) * v
        else:
            x1, x0 = constrain(x + (1 - t_now) * v), x - t_now * v
            x = (1 - t_next) * x0 + t_next * x1
        if start is not None and start.mask is not None:
            # keep the unmasked part on the straight path between the same noise and the given image
            known = interpolate(noise, start.image, torch.full((x.size(0),), t_next))
            x = start.mask * x + (1 - start.mask) * known
    return x
