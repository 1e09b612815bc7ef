"""`genlab train` as one function: a run directory that comes into being whole, a Training built from
its recipe, the trainer loop, and the cost ledger — for any task (the caller passes the Task)."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from genlab.core.checkpoint import has_checkpoint
from genlab.core.distributed import init_distributed, shutdown
from genlab.core.recipe import recipe_to_dict
from genlab.core.run import CostMeter, RunDir
from genlab.core.tracking import Trackers, open_trackers
from genlab.core.trainer import Interrupted, LoopConfig, PeriodCallback, Trainer
from genlab.errors import GenlabError
from genlab.tasks.contract import Task


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of `path` that does not exist yet (what mkdir(parents=True) would create)."""
    missing = None
    while not path.exists():
        missing, path = path, path.parent
    return missing


def _lock(path: Path) -> int:
    """Hold an exclusive lock on the run directory for as long as the process lives: a second writer is
    refused in one line, and the kernel drops the lock when the process ends, even under kill -9."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise GenlabError(f"{path} is being written by another genlab process; wait for it to finish") from None
    return fd


def _ledger(summary: dict[str, Any], session: dict[str, Any], earlier: dict[str, Any]) -> dict[str, Any]:
    """Cumulative figures at the top level (a resumed run adds its sessions up) and this session's apart."""
    sessions = int(earlier.get("sessions", 1 if earlier else 0)) + 1
    total = {k: round(session[k] + earlier.get(k, 0.0), 3) for k in ("wall_seconds", "cpu_seconds")}
    peak = max(session["peak_rss_mb"], earlier.get("peak_rss_mb", 0.0))
    return {
        **summary,
        **session,
        **total,
        "peak_rss_mb": peak,
        "sessions": sessions,
        "this_session": {**session, "steps": summary["steps_this_session"]},
    }


def train_run(
    task: Task, recipe: Any, run_path: Path, resume: bool = False, on_period: PeriodCallback | None = None
) -> dict[str, Any]:
    """Train `recipe` into `run_path` (or continue the run there); returns the run's report.

    A run comes into being whole: its folder is locked against other writers, the recipe, data and model
    are built (a failure removes a folder this call created), then the step-0 checkpoint and config.yaml
    are written. A refused `--resume` (another model, no checkpoint, nothing left to do) changes nothing.
    """
    meter = CostMeter()
    env = init_distributed(recipe.train.device)
    run = RunDir(run_path, writer=env.is_main)
    created, lock = None, None
    trackers = Trackers()
    try:
        _check_place(run, resume)
        if env.is_main:
            created, lock = _open_folder(run, resume)
        torch.manual_seed(recipe.seed)
        training = task.training(recipe, env, run)
        trainer = _trainer(training, run, recipe, env, on_period)
        earlier = run.read_report().get("cost", {}) if resume else {}
        if not _start(trainer, resume, env.is_main):
            return run.read_report()
        # Opened before config.yaml is written: a store that cannot be opened refuses the run like a bad recipe.
        trackers = open_trackers(recipe, run, task.name)
        run.sinks.append(trackers)
        run.create(recipe_to_dict(recipe))
        if env.is_main:
            print(
                f"data: {training.data_source}; run: {run_path}"
                + (f" (resumed at step {trainer.step})" if resume else "")
            )
        _fit(trainer, lambda summary: _write_ledger(run, summary, meter, earlier, env, training))
        trackers.finish("FINISHED")  # after the ledger: the trackers get the whole report
        run.close()
        return run.read_report()
    except BaseException as exc:
        trackers.finish("KILLED" if isinstance(exc, (Interrupted, KeyboardInterrupt)) else "FAILED")
        run.close()
        _undo(run, created, claimed=lock is not None and not resume)
        raise
    finally:
        if lock is not None:
            os.close(lock)
        shutdown(env)


def _start(trainer: Trainer, resume: bool, is_main: bool) -> bool:
    """Resume from the last checkpoint, or write the step-0 one; False when a resumed run has nothing left."""
    if not resume:
        trainer.save()  # step 0: from here on the run always has a checkpoint to resume from
        return True
    trainer.resume()
    if trainer.step < trainer.total_steps:
        return True
    if is_main:
        print(
            f"nothing to do: {trainer.run.path} has trained all {trainer.step} steps of its recipe "
            "(to train longer, resume with a larger train.epochs or train.max_iters)"
        )
    return False


def _undo(run: RunDir, created: Path | None, claimed: bool) -> None:
    """After a failure before the run came into being: leave no folder this call created, and unclaim a folder
    that was there."""
    if run.exists():
        return
    if created:
        shutil.rmtree(created, ignore_errors=True)
    elif claimed:
        run.claim_path.unlink(missing_ok=True)


def _check_place(run: RunDir, resume: bool) -> None:
    """--resume needs a checkpoint; a new run needs a place that holds no run."""
    if resume and not has_checkpoint(run.checkpoint_dir):
        raise GenlabError(
            f"{run.path} has no checkpoint to resume from; start it afresh with "
            f"`genlab train RECIPE --out {run.path}` after removing the folder"
        )
    if run.exists() and not resume:
        raise GenlabError(f"{run.path} already holds a run; pass --resume to continue it or choose another --out")


def _open_folder(run: RunDir, resume: bool) -> tuple[Path | None, int]:
    """Create (or reopen) and lock the run folder: (the outermost folder this call created, the lock)."""
    if not resume:
        run.check_new_place()  # never into a folder of the user's own files
    missing = _first_missing(run.path.absolute())
    try:
        run.path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenlabError(f"cannot create run directory {run.path}: {exc.strerror or exc}") from None
    lock = _lock(run.path)  # ours to remove on failure only once we hold the lock: never another's folder
    if not resume:
        run.claim()
    return missing, lock


def _trainer(training: Any, run: RunDir, recipe: Any, env: Any, on_period: PeriodCallback | None) -> Trainer:
    t = recipe.train
    loop = LoopConfig(
        seed=recipe.seed,
        periods=t.periods,
        global_batch=recipe.data.batch_size,
        max_minutes=t.max_minutes,
        max_cpu_minutes=t.max_cpu_minutes,
        sample_every=t.sample_every,
        checkpoint_every=t.checkpoint_every,
        progress=t.progress,
    )
    return Trainer(training, run, loop, env, on_period)


def _fit(trainer: Trainer, write_ledger: Any) -> None:
    """Train to the end; an interrupted session still counts in the ledger, up to its checkpoint."""
    try:
        write_ledger(trainer.fit())
    except Interrupted:
        if trainer.interrupted_summary is not None:
            write_ledger(trainer.interrupted_summary)
        raise


def _write_ledger(
    run: RunDir, summary: dict[str, Any], meter: CostMeter, earlier: dict[str, Any], env: Any, training: Any
) -> None:
    run.update_report(
        "cost",
        {
            **_ledger(summary, meter.snapshot(env.device.type), earlier),
            "processes": env.world_size,
            "threads": torch.get_num_threads(),
            "device": str(env.device),
            "parameters": {name: count_parameters(m) for name, m in training.modules.items()},
            "data_source": training.data_source,
        },
    )
