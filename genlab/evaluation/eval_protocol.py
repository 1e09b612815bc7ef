"""What an evaluation protocol is (genlab.evaluation.protocols lists them). Its own module so that each
protocol module can build one without importing the list that imports it (no import cycle)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EvalProtocol:
    name: str  # the --protocol value and the report.json section it writes
    endpoints: tuple[str, ...]  # the serving endpoints of the runs it can score (RunHandle.endpoint)
    score: Callable[..., dict[str, Any]]  # score(handle, **options) -> JSON-serialisable metrics;
    #                                        its keyword arguments (all with defaults) are the CLI's options
    summary: str  # one line for --help
