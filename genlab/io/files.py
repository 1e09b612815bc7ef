"""The one way genlab writes a file: to a temporary name beside it, then renamed into place, so a
reader (or a run interrupted mid-write) never sees half a file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from genlab.errors import GenlabError
from genlab.io.validate import output_file


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` to fill a temporary file beside `path`, then rename it to `path`. A symbolic link
    is followed: the temporary file goes beside its target, which the rename replaces, and the link stays."""
    path = output_file(path, "output file")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GenlabError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, payload: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(payload))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_npz(path: str | Path, **arrays: Any) -> Path:
    """numpy arrays by name as one .npz file at `path` (written through a file object: np.savez would append
    .npz to the temporary file's bare name)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    return atomic_write(path, write)


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """A JSON file a user or an earlier run wrote; any problem with it is one line naming the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GenlabError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise GenlabError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GenlabError(f"{path} is not a valid {what} ({exc})") from None


def read_yaml(path: str | Path, what: str) -> Any:
    """A YAML file's contents; any failure to read or parse it is one line naming `what` and the path."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GenlabError(f"{what} {path} not found") from None
    except OSError as exc:
        raise GenlabError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise GenlabError(f"{what} {path} is not a UTF-8 text file") from None
    except yaml.YAMLError as exc:
        raise GenlabError(f"{what} {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
