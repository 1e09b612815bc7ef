"""Where a study lives, and what happens to the trials of a worker that was killed.

Default storage: an Optuna journal file, sweeps/<study>/journal.log. Every write is one appended line
under a file lock, so several processes on one machine share it without SQLite's "database is locked".
`--storage sqlite:///...` or `postgresql://...` names an RDB instead (many machines: PostgreSQL).

A worker killed mid-trial (kill -9, a lost machine) leaves its trial RUNNING for ever. Two ways bring it back:
- on this machine, each worker holds an flock on sweeps/<study>/workers/<host>-<pid>.lock for its life and
  writes `<host>:<that path>` into each trial's user attrs (so commands with other --out folders sharing one
  RDB find it too); the kernel drops the lock when the process dies, so a
  RUNNING trial of this host whose lock nobody holds is stale: `recover_stale_trials` marks it FAIL and
  enqueues its params again (user attr `retry_of`), at the start of every sweep command;
- with an RDB, Optuna's heartbeat also runs: a trial whose worker (on any machine) stopped beating for
  GRACE_S is failed and retried by RetryHeartbeatStaleTrialCallback when another worker starts a trial.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path
from typing import Any

from genlab.errors import GenlabError, first_line

HEARTBEAT_S, GRACE_S = 30, 120
SCHEMA_RACE_TRIES = 5
NO_OWNER_GRACE_S = 60  # a RUNNING trial not yet stamped with its worker: give the worker time to stamp it
WORKER_ATTR = "worker"


def open_storage(url: str | None, folder: Path) -> Any:
    """The Optuna storage: the study folder's journal file, or the RDB at `url`."""
    import warnings

    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    if url is None:
        return JournalStorage(JournalFileBackend(str(folder / "journal.log")))
    if not url.startswith(("sqlite:///", "postgresql", "mysql")):
        raise GenlabError(
            f"--storage {url}: expected an RDB URL such as sqlite:///sweeps.db or "
            "postgresql://user@host/db (the default is a journal file in the study folder)"
        )
    for attempt in range(SCHEMA_RACE_TRIES):
        try:
            with warnings.catch_warnings():  # Optuna 5 flags the heartbeat API experimental: not the user's concern
                warnings.simplefilter("ignore", ExperimentalWarning)
                return RDBStorage(
                    url,
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=GRACE_S,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3),
                )
        except (IntegrityError, ProgrammingError) as exc:
            # Workers started at once on a fresh database all create Optuna's tables; PostgreSQL lets one win
            # and fails the others (a duplicate key, or "relation already exists"). They exist now: open again.
            race = exc
            time.sleep(0.5 * (attempt + 1))
        except Exception as exc:  # a missing driver, a refused connection, a bad URL: sqlalchemy's many kinds
            raise GenlabError(f"--storage: cannot open {url.split('@')[-1]}: {first_line(exc)}") from None
    raise GenlabError(f"--storage: cannot open {url.split('@')[-1]}: {first_line(race)} ({SCHEMA_RACE_TRIES} tries)")


class WorkerLock:
    """This process's claim on the trials it runs: an flock the kernel releases when the process dies."""

    def __init__(self, folder: Path):
        self.path = folder.resolve() / "workers" / f"{socket.gethostname()}-{os.getpid()}.lock"
        # host:lock path — sweep commands sharing an RDB from other --out folders of this host can check it
        self.name = f"{socket.gethostname()}:{self.path}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def close(self) -> None:
        os.close(self.fd)
        self.path.unlink(missing_ok=True)


def _worker_alive(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False  # its worker ended and removed the lock: it did not finish this trial
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def recover_stale_trials(study: Any) -> list[int]:
    """Fail this host's RUNNING trials whose worker is dead and enqueue their params again; returns the
    numbers of the trials failed. Trials of other hosts are left to the RDB heartbeat."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get(WORKER_ATTR)
        if owner is None:
            started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
            if time.time() - started < NO_OWNER_GRACE_S:
                continue
        else:
            owner_host, _, lock_path = owner.partition(":")
            if owner_host != host or _worker_alive(Path(lock_path)):
                continue
        try:
            study._storage.set_trial_user_attr(trial._trial_id, "failed_because", "its worker was killed")
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # another sweep command recovered it first
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        failed.append(trial.number)
    return failed
