"""Moving MNIST (Srivastava, Mansimov & Salakhutdinov 2015): two MNIST digits bouncing in a 64x64 frame.

The construction of the authors' generator: each digit (28x28) starts at a uniform position in the
36x36 square of top-left corners, moves in a uniform random direction at 0.1 of that range per frame
(3.6 pixels), and is reflected when it reaches a wall; the position is updated before the first frame is
drawn, and overlapping digits are combined by their pixel-wise maximum. 20 frames per clip.

Clips are made on the fly from (seed, index): the same seed and index give the same clip on any machine
(numpy's PCG64), so nothing is cached. Training clips draw digits from MNIST's train split, test clips
from its test split (genlab's bundled 5k subset: 4,000 / 1,000 digits). Each clip carries its labels:
the two digits, their unit directions at the first frame and their top-left positions in every frame
(what the motion evaluation compares generated clips with).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genlab.data.images import ImageData
from genlab.errors import GenlabError

FRAME = 64  # frame side, pixels
DIGIT = 28  # digit side, pixels
FRAMES = 20  # frames per clip
DIGITS = 2  # digits per clip
STEP = 0.1  # speed, as a fraction of the free range (FRAME - DIGIT) per frame: 3.6 pixels
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True)
class Clips:
    """A batch of clips: frames (B, T, 64, 64) uint8, digits (B, 2) int64, directions (B, 2, 2) unit
    (dy, dx) at the start, positions (B, T, 2, 2) top-left corners (y, x) in pixels per frame and digit."""

    frames: np.ndarray
    digits: np.ndarray
    directions: np.ndarray
    positions: np.ndarray


def trajectory(rng: np.random.Generator, frames: int = FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """One digit's path: (frames, 2) integer top-left corners (y, x) and its starting unit direction."""
    pos = rng.random(2)  # (y, x) in [0, 1]: a fraction of the free range
    theta = rng.random() * 2 * np.pi
    velocity = np.array([np.sin(theta), np.cos(theta)])
    direction = velocity.copy()
    path = np.empty((frames, 2))
    for i in range(frames):
        pos = pos + velocity * STEP
        for axis in range(2):  # reflect at the walls, as the authors' generator does
            if pos[axis] <= 0 or pos[axis] >= 1:
                pos[axis] = min(max(pos[axis], 0.0), 1.0)
                velocity[axis] = -velocity[axis]
        path[i] = pos
    return (path * (FRAME - DIGIT)).astype(np.int64), direction


class MovingMNIST:
    """Clips of two digits of one split of an MNIST data set, made from (seed, index)."""

    def __init__(self, data: ImageData, split: str, seed: int = 0, frames: int = FRAMES):
        self.images, self.labels = data.split(split)  # (N, 28, 28) uint8, (N,)
        if len(self.labels) < DIGITS:
            raise GenlabError(f"{data.name} {split} split has {len(self.labels)} digits: a clip needs {DIGITS}")
        if frames < 2:
            raise GenlabError(f"a clip needs at least 2 frames, not {frames}")
        self.split, self.seed, self.frames = split, seed, frames

    def clip(self, index: int) -> Clips:
        """Clip number `index` (any int >= 0) as a batch of one."""
        rng = np.random.default_rng([self.seed, index, 0 if self.split == "train" else 1])
        picks = rng.integers(0, len(self.labels), DIGITS)
        frames = np.zeros((self.frames, FRAME, FRAME), dtype=np.uint8)
        positions = np.empty((self.frames, DIGITS, 2), dtype=np.int64)
        directions = np.empty((DIGITS, 2))
        for d, pick in enumerate(picks):
            positions[:, d], directions[d] = trajectory(rng, self.frames)
            for i, (y, x) in enumerate(positions[:, d]):
                window = frames[i, y : y + DIGIT, x : x + DIGIT]
                np.maximum(window, self.images[pick], out=window)
        return Clips(frames[None], self.labels[picks][None].astype(np.int64), directions[None], positions[None])

    def batch(self, indices: list[int] | np.ndarray) -> Clips:
        """Clips `indices`, stacked: frames (B, T, 64, 64) uint8 and their labels."""
        clips = [self.clip(int(i)) for i in indices]
        return Clips(*(np.concatenate([getattr(c, f) for c in clips]) for f in Clips.__dataclass_fields__))


def prompt_digits(prompt: str) -> tuple[int, int]:
    """ "a 2 and a 9" (or "2 and 9", "two and nine", "2, 9") -> (2, 9): the two digits a prompt names."""
    words = prompt.lower().replace(",", " ").replace("&", " ").split()
    found = []
    for word in words:
        if word in ("a", "an", "and", "digits", "digit", "the"):
            continue
        if word.isdigit() and len(word) == 1:
            found.append(int(word))
        elif word in DIGIT_NAMES:
            found.append(DIGIT_NAMES.index(word))
        else:
            raise GenlabError(f"--prompt names a digit 0..9 twice, as in 'a 2 and a 9'; '{word}' is not a digit")
    if len(found) != DIGITS:
        raise GenlabError(f"--prompt must name {DIGITS} digits, as in 'a 2 and a 9'; '{prompt}' names {len(found)}")
    return found[0], found[1]
