"""The range rules every value from outside genlab meets before use: command-line options, recipe values,
environment variables and output paths. One place, so that the CLI, recipes and the server agree on what an
integer, a seed, a number, a text or a path may be (docs/reliability.md lists them).
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

from genlab.errors import GenlabError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what a tensor index, a count or a step counter holds
# A seed fits numpy's legacy generator (0..2**32-1), and the seeds derived from it (seed * 1_000_003 + step)
# stay inside the 64 bits torch's generators take.
SEED_MAX = 2**32 - 1


def check_int(name: str, value: int, minimum: int = INT64_MIN, maximum: int = INT64_MAX) -> int:
    if not minimum <= value <= maximum:
        raise GenlabError(f"{name} must be an integer in {minimum}..{maximum}, got {value}")
    return value


def check_seed(name: str, value: int) -> int:
    return check_int(name, value, 0, SEED_MAX)


def check_float(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise GenlabError(f"{name} must be a finite number, got {value!r}")
    return value


def check_text(name: str, value: str) -> str:
    """Text that encodes as UTF-8. Arguments that were not UTF-8 reach Python as lone surrogates
    (surrogateescape); they are refused here, with the offending byte, before any file or model sees them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise GenlabError(f"{name} is not UTF-8 text ({ascii(value[exc.start])} at character {exc.start})") from None
    if "\x00" in value:
        raise GenlabError(f"{name} holds a NUL character")
    return value


def environ(name: str) -> str | None:
    """An environment variable's value; set but empty counts as unset (`GENLAB_DATA_DIR= genlab ...`)."""
    value = os.environ.get(name)
    return value if value else None


def environ_int(name: str, default: int, minimum: int = 0) -> int:
    raw = environ(name)
    if raw is None:
        return default
    if not raw.strip().isdigit() or not minimum <= int(raw) <= INT64_MAX:
        raise GenlabError(f"{name} must be an integer >= {minimum}, got {raw!r}")
    return int(raw)


def environ_folder(name: str, default: Path) -> Path:
    raw = environ(name)
    return Path(check_text(name, raw)) if raw is not None else default


def output_file(path: str | Path, what: str = "--out") -> Path:
    """Where a file named `path` is really written: a symbolic link's target (so the link survives), checked to
    be a regular file or a new name in an existing folder. A folder or a device is refused, never replaced."""
    if str(path) == "":
        raise GenlabError(f"{what} is empty: name a file")
    check_text(what, str(path))
    target = Path(os.path.realpath(path)) if Path(path).is_symlink() else Path(path)
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise GenlabError(f"{what} {path}: {exc.strerror}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise GenlabError(f"{what} {path} is a folder; name a file")
    if mode is not None and not stat.S_ISREG(mode):
        raise GenlabError(f"{what} {path} is not a regular file (a device, pipe or socket); name a file")
    if not target.parent.is_dir():
        raise GenlabError(f"{what} {path}: folder {target.parent} does not exist")
    return target
