"""How long genlab takes to start where torch is not needed: `import genlab`, `genlab --version`, `genlab --help`,
beside `python -c pass` (the interpreter alone) — the median of 5 fresh processes each — for this checkout and,
with `--before REF`, for a git revision of it (exported to a temporary folder), measured in the same run.

    python benchmarks/startup_benchmark.py                  # -> benchmarks/results/startup.json
    python benchmarks/startup_benchmark.py --before 273f81c # the same, with that revision measured alongside

The load average (1 minute) is recorded before and after: on a shared machine it says how far to trust the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "startup.json"
COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "import genlab": ["-c", "import genlab"],
    "genlab --version": ["-m", "genlab", "--version"],
    "genlab --help": ["-m", "genlab", "--help"],
}


def seconds(args: list[str], source: Path, repeats: int) -> float | None:
    """Median wall-clock seconds of `python ARGS` with `source` first on the import path, in fresh processes;
    None where the command fails there (an older revision without `--version`)."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, *args], cwd=source, env=env, capture_output=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            return None
    return round(statistics.median(times), 3)


def measure(source: Path, repeats: int) -> dict[str, float | None]:
    return {name: seconds(args, source, repeats) for name, args in COMMANDS.items()}


def export_revision(ref: str, folder: Path) -> Path:
    """The files of git revision `ref` of this checkout, written into `folder`."""
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="REF", help="a git revision to measure alongside this checkout")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = {
        "command": " ".join(["python", "benchmarks/startup_benchmark.py", *sys.argv[1:]]),
        "python": platform.python_version(),
        "repeats": args.repeats,
        "statistic": "median wall-clock seconds of fresh processes",
        "load_average_1min_before": round(os.getloadavg()[0], 2),
    }
    with tempfile.TemporaryDirectory() as scratch:
        if args.before:
            before = export_revision(args.before, Path(scratch))
            result["before"] = {"revision": args.before, **measure(before, args.repeats)}
        result["after"] = measure(ROOT, args.repeats)
    result["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
