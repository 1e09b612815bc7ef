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
        if resume and not has_checkpoint(run.checkpoint_dir):
            raise GenlabError(
                f"{run_path} has no checkpoint to resume from; start it afresh with "
                f"`genlab train RECIPE --out {run_path}` after removing the folder"
            )
        if run.exists() and not resume:
            raise GenlabError(f"{run_path} already holds a run; pass --resume to continue it or choose another --out")
        if env.is_main:
            if not resume:
                run.check_new_place()  # never into a folder of the user's own files
            missing = _first_missing(run.path.absolute())
            try:
                run.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise GenlabError(f"cannot create run directory {run_path}: {exc.strerror or exc}") from None
            lock = _lock(run.path)
            created = missing  # ours to remove on failure only once we hold the lock: never another's folder
            if not resume:
                run.claim()
        torch.manual_seed(recipe.seed)
        training = task.training(recipe, env, run)
        t = recipe.train
        trainer = Trainer(
            training,
            run,
            LoopConfig(
                seed=recipe.seed,
                periods=t.periods,
                global_batch=recipe.data.batch_size,
                max_minutes=t.max_minutes,
                sample_every=t.sample_every,
                checkpoint_every=t.checkpoint_every,
                progress=t.progress,
            ),
            env,
            on_period,
        )
        earlier = run.read_report().get("cost", {}) if resume else {}
        if resume:
            trainer.resume()
            if trainer.step >= t.periods * trainer.steps_per_period:
                if env.is_main:
                    print(
                        f"nothing to do: {run_path} has trained all {trainer.step} steps of its recipe "
                        "(to train longer, resume with a larger train.epochs or train.max_iters)"
                    )
                return run.read_report()
        else:
            trainer.save()  # step 0: from here on the run always has a checkpoint to resume from
        # Opened before config.yaml is written: a store that cannot be opened refuses the run like a bad recipe.
        trackers = open_trackers(recipe, run, task.name)
        run.sinks.append(trackers)
        run.create(recipe_to_dict(recipe))
        if env.is_main:
            print(
                f"data: {training.data_source}; run: {run_path}"
                + (f" (resumed at step {trainer.step})" if resume else "")
            )

        def write_ledger(summary: dict[str, Any]) -> None:
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

        try:
            write_ledger(trainer.fit())
        except Interrupted:
            if trainer.interrupted_summary is not None:  # the session counts, up to its checkpoint
                write_ledger(trainer.interrupted_summary)
            raise
        trackers.finish("FINISHED")  # after the ledger: the trackers get the whole report
        run.close()
        return run.read_report()
    except BaseException as exc:
        trackers.finish("KILLED" if isinstance(exc, (Interrupted, KeyboardInterrupt)) else "FAILED")
        run.close()
        if created and not run.exists():  # failed before the run came into being: leave no folder behind
            shutil.rmtree(created, ignore_errors=True)
        elif lock is not None and not resume and not run.exists():  # a folder that was there: unclaimed again
            run.claim_path.unlink(missing_ok=True)
        raise
    finally:
        if lock is not None:
            os.close(lock)
        shutdown(env)
