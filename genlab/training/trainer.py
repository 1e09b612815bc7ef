"""One small training loop shared by every task: epochs, progress bar, logging, checkpoint/resume,
Ctrl-C, a wall-clock budget, DDP, and the cost ledger.

A task supplies the models and one step; the loop owns everything about *running* it:

    Task.from_recipe(recipe, env, run) builds it (pipeline.TASKS maps a recipe's `task:` to the class)
    task.data_source        where the data came from, for the log and the ledger
    task.modules            dict name -> nn.Module (saved as <name>.safetensors)
    task.optimizers         dict name -> Optimizer
    task.num_examples       size of the training set
    task.train_step(idx)    one optimisation step on the examples `idx` (this rank's slice); -> metrics
    task.rng_state() / task.load_rng_state(state)
    task.end_epoch(epoch, run) -> metrics (sample grids, quick evaluation)
    task.meta()             the model description stored beside the weights
    task.best_metric        (optional) an end_epoch metric, lower is better, that picks checkpoints/best
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from genlab.errors import GenlabError
from genlab.tracking import RunDir
from genlab.training.checkpoint import load_state, load_weights, recover_interrupted_save, save_checkpoint
from genlab.training.distributed import DistEnv, barrier


class Task(Protocol):
    data_source: str
    modules: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    num_examples: int

    def train_step(self, indices: torch.Tensor, step: int) -> dict[str, float]: ...
    def step_kind(self, step: int) -> str: ...
    def rng_state(self) -> dict[str, Any]: ...
    def load_rng_state(self, state: dict[str, Any]) -> None: ...
    def end_epoch(self, epoch: int, run: RunDir) -> dict[str, float]: ...
    def meta(self) -> dict[str, Any]: ...


@dataclass
class LoopConfig:
    seed: int
    epochs: int
    global_batch: int
    max_minutes: float = 0.0
    sample_every: int = 1
    checkpoint_every: int = 1
    log_every: int = 20
    progress: bool = True


class Trainer:
    def __init__(self, task: Task, run: RunDir, loop: LoopConfig, env: DistEnv):
        if loop.global_batch % env.world_size:
            raise GenlabError(f"data.batch_size={loop.global_batch} is not divisible by "
                              f"the {env.world_size} processes")
        self.task, self.run, self.loop, self.env = task, run, loop, env
        self.steps_per_epoch = task.num_examples // loop.global_batch  # drop the ragged last batch
        if self.steps_per_epoch == 0:
            raise GenlabError(f"the training set has {task.num_examples} examples, "
                              f"fewer than one batch of {loop.global_batch}")
        self.step = 0
        self.flops_by_kind: dict[str, int] = {}
        self.total_flops = 0
        self.train_seconds = 0.0  # accumulated over resumed sessions
        self.best_score = float("inf")  # of task.best_metric, lower is better

    # checkpoints ---------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizers": {k: o.state_dict() for k, o in self.task.optimizers.items()},
            "rng": self.task.rng_state(),
            "flops_by_kind": self.flops_by_kind,
            "total_flops": self.total_flops,
            "train_seconds": self.train_seconds,
            "best_score": self.best_score,
        }

    def save(self) -> None:
        if self.env.is_main:
            save_checkpoint(self.run.checkpoint_dir, self.task.modules, self._state(), self.task.meta())
        barrier(self.env)

    def _keep_if_best(self, metrics: dict[str, float]) -> None:
        # Only the main rank scores samples, so only it sees the metric: no barrier here.
        score = metrics.get(getattr(self.task, "best_metric", ""))
        if score is not None and score < self.best_score:
            self.best_score = score
            save_checkpoint(self.run.best_checkpoint_dir, self.task.modules, self._state(), self.task.meta())

    def resume(self) -> bool:
        """Load the last checkpoint when the run has one; True if training continues from it."""
        folder = self.run.checkpoint_dir
        recover_interrupted_save(folder)
        if not (folder / "meta.json").is_file():
            return False
        load_weights(folder, self.task.modules, self.task.meta())
        state = load_state(folder)
        for name, optimizer in self.task.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.task.load_rng_state(state["rng"])
        self.step = state["step"]
        self.flops_by_kind = state["flops_by_kind"]
        self.total_flops = state["total_flops"]
        self.train_seconds = state["train_seconds"]
        self.best_score = state["best_score"]
        return True

    # the loop ---------------------------------------------------------------------------------
    def _epoch_order(self, epoch: int) -> torch.Tensor:
        # Each epoch's order depends only on (seed, epoch): a resumed run sees the same batches.
        generator = torch.Generator().manual_seed(self.loop.seed * 1_000_003 + epoch)
        return torch.randperm(self.task.num_examples, generator=generator)

    def _run_step(self, indices: torch.Tensor) -> dict[str, float]:
        kind = self.task.step_kind(self.step)
        if kind not in self.flops_by_kind:  # count each kind of step once, then reuse the figure
            with FlopCounterMode(display=False) as counter:
                metrics = self.task.train_step(indices, self.step)
            self.flops_by_kind[kind] = counter.get_total_flops() * self.env.world_size
        else:
            metrics = self.task.train_step(indices, self.step)
        self.total_flops += self.flops_by_kind[kind]
        return metrics

    def fit(self) -> dict[str, Any]:
        """Train to the end (or the budget); returns the ledger entries the loop measured."""
        loop, env = self.loop, self.env
        total_steps = loop.epochs * self.steps_per_epoch
        local_batch = loop.global_batch // env.world_size
        start_step = self.step
        budget_s = loop.max_minutes * 60
        session_start = time.perf_counter()
        bar = tqdm(total=total_steps, initial=self.step, disable=not (loop.progress and env.is_main),
                   unit="step", dynamic_ncols=True)
        stopped_by = "epochs"
        try:
            while self.step < total_steps:
                epoch, within = divmod(self.step, self.steps_per_epoch)
                order = self._epoch_order(epoch)
                for batch_index in range(within, self.steps_per_epoch):
                    start = batch_index * loop.global_batch + env.rank * local_batch
                    metrics = self._run_step(order[start:start + local_batch])
                    self.step += 1
                    bar.update(1)
                    if self.step % loop.log_every == 0:
                        bar.set_postfix({k: f"{v:.3f}" for k, v in metrics.items()}, refresh=False)
                        self.run.log(self.step, metrics)
                    if budget_s and time.perf_counter() - session_start + self.train_seconds >= budget_s:
                        stopped_by = "budget"
                        break
                self.train_seconds += time.perf_counter() - session_start
                session_start = time.perf_counter()
                finished_epoch = self.step % self.steps_per_epoch == 0
                done = self.step >= total_steps or stopped_by == "budget"
                if finished_epoch or done:
                    epoch_metrics = {"epoch": round(self.step / self.steps_per_epoch, 3), **metrics}
                    if (epoch + 1) % loop.sample_every == 0 or done:
                        epoch_metrics.update(self.task.end_epoch(epoch + 1, self.run))
                    self.run.log(self.step, epoch_metrics)
                    self._keep_if_best(epoch_metrics)
                if (epoch + 1) % loop.checkpoint_every == 0 or done:
                    self.save()
                if stopped_by == "budget":
                    break
        except KeyboardInterrupt:
            # The step counter only advances after a completed step, so this state is consistent.
            self.train_seconds += time.perf_counter() - session_start
            self.save()
            bar.close()
            raise GenlabError(f"interrupted at step {self.step}; resumable checkpoint saved in "
                              f"{self.run.checkpoint_dir} (run `genlab train --resume {self.run.path}`)") from None
        bar.close()
        return {
            "stopped_by": stopped_by,
            "steps": self.step,
            "steps_this_session": self.step - start_step,
            "epochs": round(self.step / self.steps_per_epoch, 3),
            "examples_seen": self.step * loop.global_batch,
            "train_seconds": round(self.train_seconds, 3),
            "train_flops": self.total_flops,
            "train_flops_per_second": round(self.total_flops / max(self.train_seconds, 1e-9)),
            "examples_per_second": round(self.step * loop.global_batch / max(self.train_seconds, 1e-9), 1),
        }

