"""The training side of a run, as the trainer loop (genlab.core.trainer) sees it.

A task (genlab.tasks.contract.Task) builds one `Training` per run: its models, optimisers and one step.
The loop knows nothing else of the task, which is why this contract lives in core, below every task.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import torch

from genlab.core.distributed import DistEnv
from genlab.core.run import RunDir


class Training(Protocol):
    """What the trainer loop (genlab.core.trainer) calls; a task builds one per run."""

    data_source: str  # where the data came from, for the log and the ledger
    modules: dict[str, torch.nn.Module]  # saved as <name>.safetensors in each checkpoint
    optimizers: dict[str, torch.optim.Optimizer]
    num_examples: int  # examples per period: the loop takes global batches of them in a seeded order
    best_metric: str | None  # an end_period metric, lower is better, that picks checkpoints/best (None: no best)

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]:
        """One optimisation step on the examples `indices` (this rank's slice); returns its metrics."""

    def step_kind(self, step: int) -> str:
        """A name for the kind of work step `step` does: the FLOP counter measures each kind once."""

    def rng_state(self) -> dict[str, Any]: ...
    def load_rng_state(self, state: dict[str, Any]) -> None: ...
    def end_period(self, period: int, run: RunDir) -> dict[str, float]:
        """After each `train.sample_every` periods and at the end: samples, quick evaluation."""

    def meta(self) -> dict[str, Any]:
        """{"task": name, "model": config...}: stored beside the weights; loading refuses another."""


def weights_meta(task: str, config: Any, **more: Any) -> dict[str, Any]:
    """What a Training's `meta()` returns: `task`, the network's config (a dataclass) as `model`, then `more`
    (the data set, the module that samples, ...), in that order."""
    return {"task": task, "model": dataclasses.asdict(config), **more}


class OwnNoise:
    """For a Training whose random draws all come from its own generator `self.noise` (identical on every
    rank): that generator's state is what a checkpoint keeps, so a resumed run draws what it would have."""

    noise: torch.Generator

    def rng_state(self) -> dict[str, Any]:
        return {"noise": self.noise.get_state()}

    def load_rng_state(self, state: dict[str, Any]) -> None:
        self.noise.set_state(state["noise"])


class GlobalTorchRng:
    """For a Training whose only random draws are dropout's, from torch's global generator: that generator's
    state is what a checkpoint keeps."""

    def rng_state(self) -> dict[str, Any]:
        return {"torch": torch.get_rng_state()}

    def load_rng_state(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])


class NoRandomState:
    """For a Training that keeps no generator between steps (nothing drawn, or every draw seeded by the step):
    a checkpoint has no random state to keep."""

    def rng_state(self) -> dict[str, Any]:
        return {}

    def load_rng_state(self, state: dict[str, Any]) -> None:
        pass


class SampledEachPeriod:
    """For a Training of a generative model (gan, audio, flow): at the end of each sample period the main
    rank saves the period's samples, then, when the training has an evaluator, returns the quick scores of
    a fresh draw (`best_metric` is one of them)."""

    env: DistEnv
    evaluator: Any  # an evaluator net, or None: no quick scores (and no checkpoints/best)

    def save_samples(self, period: int, run: RunDir) -> None:
        """Write the period's samples into `run.samples_dir` (and TensorBoard)."""
        raise NotImplementedError

    def quick_scores(self) -> dict[str, float]:
        """The evaluator's scores of a fresh draw, as metrics."""
        raise NotImplementedError

    def end_period(self, period: int, run: RunDir) -> dict[str, float]:
        if not self.env.is_main:
            return {}
        self.save_samples(period, run)
        return {} if self.evaluator is None else self.quick_scores()
