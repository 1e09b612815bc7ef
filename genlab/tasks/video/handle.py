"""A video run opened for use: its EMA network, the three uses (generate, predict, between) and scoring."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from genlab.core.checkpoint import load_network
from genlab.core.run import CostMeter, RunDir
from genlab.data import load_image_dataset
from genlab.data.moving_mnist import MovingMNIST, prompt_digits
from genlab.errors import GenlabError
from genlab.evaluation.classifier import load_evaluator
from genlab.evaluation.pair_reader import load_pair_reader
from genlab.interop.onnx import ExportGraph
from genlab.io.video import VIDEO_SUFFIXES, GeneratedVideo, read_frame_image, read_frames_npy
from genlab.models.video_unet import ClipNetwork, VideoUNetConfig
from genlab.tasks.contract import RunHandle
from genlab.tasks.video.pipeline import check_clips, draw, sample_frames, to_model, video_network
from genlab.tasks.video.process import MODES, mode_mask
from genlab.tasks.video.recipe import VideoRecipe
from genlab.tasks.video.scoring import Judges, Uses, score_uses

PAIRS = 100  # class k asks for digits k // 10 and k % 10


class Sampler(torch.nn.Module):
    """The exported graph: noise (B, planes, grid, grid), given frames (B, T, S, S) (in [-1, 1]), mask (B, T),
    digits (B, 2) -> clips (B, T, S, S) in [0, 1]."""

    def __init__(self, net: ClipNetwork, steps: int, guidance: float):
        super().__init__()
        self.net, self.steps, self.guidance = net, steps, guidance

    def forward(self, noise, given, mask, digits):  # noqa: ANN001, ANN201 - tensors, as the notes below say
        return sample_frames(self.net, noise, given, mask, digits, self.steps, self.guidance)


class VideoRun(RunHandle):
    eval_section = "video"
    output_suffixes = VIDEO_SUFFIXES
    endpoint = "images"  # each clip served as its filmstrip PNG

    def __init__(self, run: RunDir, recipe: VideoRecipe, checkpoint: str = "last"):
        super().__init__(run, recipe, checkpoint)
        self.config, self.model, *_ = load_network(run, checkpoint, "video", VideoUNetConfig, video_network, "model")

    @property
    def class_names(self) -> list[str]:
        return [f"a {k // 10} and a {k % 10}" for k in range(PAIRS)]

    def _settings(self, steps: int | None, guidance: float | None) -> tuple[int, float]:
        steps = self.recipe.sample.steps if steps is None else steps
        guidance = self.recipe.sample.guidance if guidance is None else guidance
        if not 1 <= steps <= 1000:
            raise GenlabError(f"--steps must be in 1..1000, got {steps}")
        if not 0 <= guidance < math.inf:
            raise GenlabError(f"--guidance must be a finite number >= 0, got {guidance}")
        return steps, guidance

    def _frame(self, frame: np.ndarray, what: str) -> torch.Tensor:
        """(H, W) or (T, H, W) in [0, 1], side 64 or the model's -> model scale at the model's side."""
        size = self.config.size
        if frame.shape[-2:] not in ((64, 64), (size, size)):
            raise GenlabError(f"{what}: frames must be 64x64 (Moving MNIST) or {size}x{size}, got {frame.shape[-2:]}")
        return to_model(torch.from_numpy(frame).unsqueeze(0), size)[0]  # (1, [T,] H, W): pooled as one batch

    def _given(self, mode: str, inputs: list[str]) -> torch.Tensor:
        """The frames `mode` starts from, as a clip (1, T, S, S) in model scale (zeros where not given)."""
        frames, size, context = self.config.frames, self.config.size, self.recipe.data.context
        clip = torch.zeros(1, frames, size, size)
        if mode == "generate":
            if inputs:
                raise GenlabError("--mode generate starts from nothing: --input is for --mode predict or between")
            return clip
        if mode == "predict":
            if len(inputs) != 1 or not inputs[0].endswith(".npy"):
                raise GenlabError(f"--mode predict takes one --input FILE.npy of at least {context} frames (T, H, W)")
            given = read_frames_npy(inputs[0], "--input")
            if len(given) < context:
                raise GenlabError(f"--input {inputs[0]}: {len(given)} frames; prediction needs the first {context}")
            clip[0, :context] = self._frame(given[:context], f"--input {inputs[0]}")
            return clip
        if len(inputs) != 2:
            raise GenlabError("--mode between takes two --input images: the first frame and the last")
        clip[0, 0] = self._frame(read_frame_image(inputs[0], "--input"), f"--input {inputs[0]}")
        clip[0, -1] = self._frame(read_frame_image(inputs[1], "--input"), f"--input {inputs[1]}")
        return clip

    def _digits(self, n: int, label: int | None, prompt: str | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, 2) digits and (n,) pair ids: from `prompt` ("a 2 and a 9"), `label` (k: digits k//10, k%10),
        else every pair in turn."""
        if prompt is not None and label is not None:
            raise GenlabError("give --prompt or --label, not both")
        if label is not None and not 0 <= label < PAIRS:
            raise GenlabError(f"--label must be in 0..{PAIRS - 1} (k asks for digits k // 10 and k % 10), got {label}")
        if prompt is not None:
            a, b = prompt_digits(prompt)
            label = 10 * a + b
        ids = torch.full((n,), label) if label is not None else torch.arange(n) % PAIRS
        return torch.stack([ids // 10, ids % 10], 1), ids

    # long: one entry point for three uses, each a few checks
    def generate(
        self,
        n: int = 1,
        label: int | None = None,
        seed: int = 0,
        prompt: str | None = None,
        mode: str = "generate",
        input: list[str] | None = None,  # noqa: A002 - the CLI's --input
        steps: int | None = None,
        guidance: float | None = None,
    ) -> GeneratedVideo:
        """n clips of 20 frames. mode generate: the two digits of `prompt` ("a 2 and a 9") or of pair
        `label` (k: digits k // 10 and k % 10), else every pair in turn; mode predict: the 10 frames after
        the first 10 of `input` (one .npy (T, H, W), T >= 10); mode between: the frames between two images
        `input` (first, last). Frames are 64x64 or the model's side; clips come at the model's side.

        Args:
            mode: generate (new clips), predict (the frames after `input`) or between (the frames between two
                `input` images)
            input: one .npy (T, H, W) of T >= 10 frames for mode predict, two images (first, last) for mode between
        """
        check_clips(n)
        steps, guidance = self._settings(steps, guidance)
        if mode not in MODES:
            raise GenlabError(f"--mode must be one of {', '.join(MODES)}, got '{mode}'")
        given = self._given(mode, list(input or []))
        if mode != "generate" and (prompt is not None or label is not None):
            raise GenlabError(f"--mode {mode} continues the given frames: --prompt and --label are for --mode generate")
        digits, ids = self._digits(n, label, prompt) if mode == "generate" else (None, None)
        mask = mode_mask(mode, self.config.frames, self.recipe.data.context).expand(n, -1)
        clips = draw(self.model, seed, given.expand(n, -1, -1, -1), mask, digits, steps, guidance)
        return GeneratedVideo(clips, ids)

    def export_graph(self, steps: int | None = None, guidance: float | None = None) -> ExportGraph:
        """The sampler unrolled at `steps` Euler steps and guidance `guidance`, for any of the three uses."""
        steps, guidance = self._settings(steps, guidance)
        c = self.config

        def example(batch: int) -> dict[str, torch.Tensor]:
            rng = torch.Generator().manual_seed(batch)
            mask = torch.stack([mode_mask(MODES[i % 3], c.frames, self.recipe.data.context) for i in range(batch)])
            return {
                "noise": torch.randn(batch, c.planes, c.grid, c.grid, generator=rng),
                "given": torch.rand(batch, c.frames, c.size, c.size, generator=rng) * 2 - 1,
                "mask": mask,
                "digits": torch.randint(0, 10, (batch, 2), generator=rng),
            }

        notes = {
            "noise": f"standard normal noise (batch, {c.planes}, {c.grid}, {c.grid}): the clip (or its latents) "
            "at time 0",
            "given": "the given frames in [-1, 1] (anything where mask is 0)",
            "mask": "(batch, frames): 1 on a given frame",
            "digits": "(batch, 2): the two digits 0..9 a clip should show",
            "clips": f"(batch, {c.frames}, {c.size}, {c.size}) in [0, 1] after {steps} Euler steps "
            f"at guidance {guidance:g}",
        }
        return ExportGraph(Sampler(self.model, steps, guidance), example, "clips", notes=notes)

    def evaluate(self, n: int | None = None, steps: int | None = None, guidance: float | None = None) -> dict[str, Any]:
        """Each use on n held-out clips (default eval.num_clips, test-split digits): prediction and
        in-betweening MSE and SSIM per frame against copy-last-frame and a cross-fade; generation's digits
        read by the pair reader, Fréchet distances and motion, each beside real clips read the same way.
        Written to report.json as `video`."""
        n = self.recipe.eval.num_clips if n is None else n
        if not 2 <= n <= 10_000:
            raise GenlabError(f"--n must be in 2..10000 clips, got {n}")
        steps, guidance = self._settings(steps, guidance)
        data = load_image_dataset(self.recipe.data.name, self.recipe.data.path)
        judges = Judges(load_pair_reader(), load_evaluator("mnist"))
        meter = CostMeter()
        test = MovingMNIST(data, "test", EVAL_SEED).batch(range(n))
        train = MovingMNIST(data, "train", EVAL_SEED).batch(range(n))  # real clips of other digits: FID's floor
        uses = Uses(self.model, self.recipe.data.context, steps, guidance, EVAL_SEED, self.recipe.eval.batch_size)
        metrics = score_uses(uses, test, train, judges)
        metrics.update(
            clips=n,
            steps=steps,
            guidance=guidance,
            size=self.config.size,
            checkpoint=self.checkpoint,
            eval_seconds=meter.snapshot()["wall_seconds"],
        )
        metrics["fid"] = metrics["generate"]["frame_fid"]
        self.run.update_report(self.eval_section, metrics)
        return metrics


EVAL_SEED = 1234  # the held-out clips and the noise of `evaluate`: two evaluations of one checkpoint agree
