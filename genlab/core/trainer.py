"""One small training loop shared by every task: periods, progress bar, logging, checkpoint/resume,
Ctrl-C, a wall-clock budget, DDP, and what the ledger counts (steps, FLOPs, time).

A task supplies a `Training` (genlab.core.training: the models, the optimisers and one step); the loop
owns everything about *running* it. genlab.tasks.launch wraps it into the whole of `genlab train`.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from genlab.core.checkpoint import has_checkpoint, load_state, load_weights, save_checkpoint
from genlab.core.distributed import DistEnv, barrier
from genlab.core.progress import progress_bar
from genlab.core.run import RunDir
from genlab.core.threads import configure_threads
from genlab.core.training import Training
from genlab.errors import GenlabError


class Interrupted(GenlabError):
    """Ctrl-C during training, after the resumable checkpoint was saved (the CLI exits 130)."""


@dataclass
class LoopConfig:
    seed: int
    periods: int
    global_batch: int
    max_minutes: float = 0.0
    max_cpu_minutes: float = 0.0
    sample_every: int = 1
    checkpoint_every: int = 1
    log_every: int = 20
    progress: bool = True


# Called after each period's metrics are logged and saved, with (step, those metrics): a hyperparameter
# sweep reports its objective here, and stops an unpromising run by raising StopTraining.
PeriodCallback = Callable[[int, dict[str, float]], None]


class StopTraining(Exception):
    """Raised by an on_period callback: the run ends after this period, its ledger's `stopped_by` saying
    why (str(exception), e.g. "pruned"); the run is complete and consistent, just shorter."""


class Trainer:
    def __init__(
        self, task: Training, run: RunDir, loop: LoopConfig, env: DistEnv, on_period: PeriodCallback | None = None
    ):
        if loop.global_batch % env.world_size:
            raise GenlabError(f"data.batch_size={loop.global_batch} is not divisible by the {env.world_size} processes")
        self.task, self.run, self.loop, self.env = task, run, loop, env
        self.on_period = on_period
        self.steps_per_period = task.num_examples // loop.global_batch  # drop the ragged last batch
        if self.steps_per_period == 0:
            raise GenlabError(
                f"the training set has {task.num_examples} examples, fewer than one batch of {loop.global_batch}"
            )
        self.step = 0
        self.flops_by_kind: dict[str, int] = {}
        self.total_flops = 0
        self.train_seconds = 0.0  # wall time, accumulated over resumed sessions
        self.train_cpu_seconds = 0.0  # this process's CPU time (all its threads), accumulated likewise
        self.best_score = float("inf")  # of task.best_metric, lower is better
        self.interrupted_summary: dict[str, Any] | None = None  # what fit had done when Ctrl-C stopped it
        self._clock_start = (0.0, 0.0)  # (perf_counter(), process_time()) when the time not yet counted began

    # checkpoints ---------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizers": {k: o.state_dict() for k, o in self.task.optimizers.items()},
            "rng": self.task.rng_state(),
            "flops_by_kind": self.flops_by_kind,
            "total_flops": self.total_flops,
            "train_seconds": self.train_seconds,
            "train_cpu_seconds": self.train_cpu_seconds,
            "best_score": self.best_score,
            "threads": torch.get_num_threads(),  # the float summation order of this run's steps
        }

    def save(self) -> None:
        if self.env.is_main:
            save_checkpoint(self.run.checkpoint_dir, self.task.modules, self._state(), self.task.meta())
        barrier(self.env)

    def _keep_if_best(self, metrics: dict[str, float]) -> None:
        # Only the main rank scores samples, so only it sees the metric: no barrier here.
        score = metrics.get(self.task.best_metric or "")
        if score is not None and score < self.best_score:
            self.best_score = score
            save_checkpoint(self.run.best_checkpoint_dir, self.task.modules, self._state(), self.task.meta())

    def resume(self) -> bool:
        """Load the last checkpoint when the run has one; True if training continues from it."""
        folder = self.run.checkpoint_dir
        if not has_checkpoint(folder):
            return False
        load_weights(folder, self.task.modules, self.task.meta())
        state = load_state(folder)
        configure_threads(recorded=state.get("threads"))
        for name, optimizer in self.task.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.task.load_rng_state(state["rng"])
        self.step = state["step"]
        self.flops_by_kind = state["flops_by_kind"]
        self.total_flops = state["total_flops"]
        self.train_seconds = state["train_seconds"]
        self.train_cpu_seconds = state.get("train_cpu_seconds", 0.0)  # absent from checkpoints before 0.3.1
        self.best_score = state["best_score"]
        return True

    def _stop_if_diverged(self, metrics: dict[str, float], bar: Any) -> None:
        """A non-finite loss stops training at once: the poisoned weights are not saved, so the last
        checkpoint (at worst the one made before the first step) stays the run's model."""
        bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
        if not bad:
            return
        bar.close()
        key, value = next(iter(bad.items()))
        kept = load_state(self.run.checkpoint_dir)["step"] if has_checkpoint(self.run.checkpoint_dir) else 0
        self.run.update_report(
            "cost", {**self.run.read_report().get("cost", {}), "stopped_by": f"non-finite loss at step {self.step + 1}"}
        )
        raise GenlabError(
            f"training diverged: {key} = {value} at step {self.step + 1}; the checkpoint of step "
            f"{kept} is kept in {self.run.checkpoint_dir} (try a lower learning rate)"
        )

    # the loop ---------------------------------------------------------------------------------
    def _period_order(self, period: int) -> torch.Tensor:
        # Each period's order depends only on (seed, period): a resumed run sees the same batches.
        generator = torch.Generator().manual_seed(self.loop.seed * 1_000_003 + period)
        return torch.randperm(self.task.num_examples, generator=generator)

    def _counted_step(self, indices: torch.Tensor) -> dict[str, float]:
        kind = self.task.step_kind(self.step)
        if kind not in self.flops_by_kind:  # count each kind of step once, then reuse the figure
            with FlopCounterMode(display=False) as counter:
                metrics = self.task.train_step(indices, self.step)
            self.flops_by_kind[kind] = counter.get_total_flops() * self.env.world_size
        else:
            metrics = self.task.train_step(indices, self.step)
        self.total_flops += self.flops_by_kind[kind]
        return metrics

    @property
    def total_steps(self) -> int:
        return self.loop.periods * self.steps_per_period

    def fit(self) -> dict[str, Any]:
        """Train to the end (or the budget, or a callback's StopTraining); returns the ledger entries the loop
        measured. The first Ctrl-C stops between two steps and saves a resumable checkpoint."""
        start_step = self.step
        self._start_clock()
        bar = progress_bar(
            self.total_steps, unit="step", initial=self.step, disable=not (self.loop.progress and self.env.is_main)
        )
        try:
            with _ctrl_c_between_steps() as interrupt:
                stopped_by = self._run_periods(bar, interrupt)
        except KeyboardInterrupt:  # a second Ctrl-C, in the middle of a step: its state is not consistent
            bar.close()
            raise Interrupted(
                f"interrupted twice: the last checkpoint in {self.run.checkpoint_dir} is kept "
                f"(run `genlab train --resume {self.run.path}`)"
            ) from None
        except _StopRequested:  # the first Ctrl-C: the loop stopped between two steps, a consistent state
            bar.close()
            raise self._save_interrupted(start_step) from None
        bar.close()
        return self.summary(stopped_by, start_step)

    def _run_periods(self, bar: Any, interrupt: _StopRequest) -> str:
        """Every period left (a resumed run starts inside one) -> what stopped training."""
        while self.step < self.total_steps:
            period = self.step // self.steps_per_period
            metrics, over_budget = self._run_period(period, bar, interrupt)
            self._clock()
            stopped_by = self._end_period(period, metrics, done=over_budget or self.step >= self.total_steps)
            if stopped_by is not None:  # a callback's stop is the reason, even when the budget ran out too
                return stopped_by
            if over_budget:
                return "budget"
        return "periods"

    def _run_period(self, period: int, bar: Any, interrupt: _StopRequest) -> tuple[dict[str, float], bool]:
        """The steps of `period` not taken yet -> the last step's metrics, and whether the budget ran out
        before the period's end (at least one step is left: `step` lies inside `period`)."""
        order = self._period_order(period)
        for batch_index in range(self.step - period * self.steps_per_period, self.steps_per_period):
            if interrupt.requested:
                raise _StopRequested
            metrics = self._take_step(order, batch_index, bar)
            if self._over_budget():
                return metrics, True
        return metrics, False

    def _take_step(self, order: torch.Tensor, batch_index: int, bar: Any) -> dict[str, float]:
        """One step on this rank's share of global batch `batch_index` of the period's `order`."""
        local_batch = self.loop.global_batch // self.env.world_size
        start = batch_index * self.loop.global_batch + self.env.rank * local_batch
        metrics = self._counted_step(order[start : start + local_batch])
        self._stop_if_diverged(metrics, bar)
        self.step += 1
        bar.update(1)
        if self.step % self.loop.log_every == 0:
            bar.set_postfix({k: f"{v:.3f}" for k, v in metrics.items()}, refresh=False)
            self.run.log(self.step, metrics)
        return metrics

    def _over_budget(self) -> bool:
        """Past either budget (0 = none): wall minutes, or CPU minutes, which a busy shared machine does not
        shorten, so equal-CPU comparisons between runs stay fair."""
        wall, cpu = self._elapsed()
        over_wall = self.loop.max_minutes and self.train_seconds + wall >= self.loop.max_minutes * 60
        over_cpu = self.loop.max_cpu_minutes and self.train_cpu_seconds + cpu >= self.loop.max_cpu_minutes * 60
        return bool(over_wall or over_cpu)

    def _elapsed(self) -> tuple[float, float]:
        """Wall and CPU seconds since the clock last started."""
        wall_start, cpu_start = self._clock_start
        return time.perf_counter() - wall_start, time.process_time() - cpu_start

    def _clock(self) -> None:
        """Add the time since the clock last started to the run's wall and CPU totals, and start it again."""
        wall, cpu = self._elapsed()
        self.train_seconds += wall
        self.train_cpu_seconds += cpu
        self._start_clock()

    def _start_clock(self) -> None:
        self._clock_start = (time.perf_counter(), time.process_time())

    def _checkpoint_due(self, period: int, done: bool) -> bool:
        return (period + 1) % self.loop.checkpoint_every == 0 or done

    def _end_period(self, period: int, metrics: dict[str, float], done: bool) -> str | None:
        """Log the period's metrics (with the task's samples and scores when due), keep the best and the last
        checkpoint, then tell the callback -> why the callback stopped training, or None."""
        period_metrics = {"period": round(self.step / self.steps_per_period, 3), **metrics}
        if (period + 1) % self.loop.sample_every == 0 or done:
            period_metrics.update(self.task.end_period(period + 1, self.run))
        self.run.log(self.step, period_metrics)
        self._keep_if_best(period_metrics)
        saved = self._checkpoint_due(period, done)
        if saved:
            self.save()
        if self.on_period is None:
            return None
        try:  # after the save: a stop here loses nothing
            self.on_period(self.step, period_metrics)
        except StopTraining as stop:
            if not saved:
                self.save()  # the stop point is the run's last checkpoint
            return str(stop) or "stopped"
        return None

    def _save_interrupted(self, start_step: int) -> Interrupted:
        """Save the resumable checkpoint of a run stopped by Ctrl-C -> the error that tells the user."""
        self._clock()
        self.save()
        self.interrupted_summary = self.summary("interrupted", start_step)
        return Interrupted(
            f"interrupted at step {self.step}; resumable checkpoint saved in "
            f"{self.run.checkpoint_dir} (run `genlab train --resume {self.run.path}`)"
        )

    def summary(self, stopped_by: str, start_step: int) -> dict[str, Any]:
        """The ledger entries the loop measured, cumulative over the run's sessions."""
        loop = self.loop
        return {
            "stopped_by": stopped_by,
            "steps": self.step,
            "steps_this_session": self.step - start_step,
            "periods": round(self.step / self.steps_per_period, 3),
            "examples_seen": self.step * loop.global_batch,
            "train_seconds": round(self.train_seconds, 3),
            "train_cpu_seconds": round(self.train_cpu_seconds, 3),
            "train_flops": self.total_flops,
            "train_flops_per_second": round(self.total_flops / max(self.train_seconds, 1e-9)),
            "examples_per_second": round(self.step * loop.global_batch / max(self.train_seconds, 1e-9), 1),
        }


class _StopRequest:
    requested = False


class _StopRequested(Exception):
    """Raised by the loop itself, between two steps, after a first Ctrl-C."""


@contextlib.contextmanager
def _ctrl_c_between_steps():
    """The first Ctrl-C (SIGINT) only asks the loop to stop after the step it is in, so the checkpoint it
    then saves is exactly the state of a finished step; a second Ctrl-C interrupts at once."""
    request = _StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request  # signal handlers can only be set from the main thread
        return

    def handler(signum, frame):
        if request.requested:
            raise KeyboardInterrupt
        request.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)
