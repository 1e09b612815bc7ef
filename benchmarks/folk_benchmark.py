"""Folk tunes: the held-out NLL per note of a trained run beside its baselines at equal CPU time (read from its
report.json, written by `genlab eval RUN --lstm same`), the time to generate one 32-bar reel, and the time to write
it as ABC, MIDI, MusicXML, a piano roll and a FluidSynth WAV.

    genlab train folk-tunes --out runs/folk && genlab eval runs/folk --lstm same
    python benchmarks/folk_benchmark.py runs/folk      # -> benchmarks/results/folk/folk_benchmark.json

Run it alone (nothing else busy on the machine): the load average before and after is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

import genlab
from genlab.data.folk_tokens import BAR, Header

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "folk" / "folk_benchmark.json"
REEL = Header("4/4", "major", "reel")
BARS = 32


def one_tune(handle, seed: int, sampling: str, guidance: float) -> tuple[list[str], float]:
    """A reel of (up to) 32 bars and the seconds it took: sampled until <end>, 600 tokens or (metre sampling,
    which keeps the header in view) the end of the context."""
    start = time.perf_counter()
    tunes = handle.generate(
        meter=REEL.meter,
        mode=REEL.mode,
        tune_type=REEL.tune_type,
        n=1,
        seed=seed,
        max_tokens=600,
        sampling=sampling,
        guidance=guidance,
    )
    seconds = time.perf_counter() - start
    tokens = tunes.tunes[0]
    bars = [i for i, t in enumerate(tokens) if t == BAR]
    return (tokens[: bars[BARS - 1] + 1] if len(bars) >= BARS else tokens), seconds


def generation(handle, repeats: int, sampling: str, guidance: float) -> dict[str, float]:
    times, lengths, bars = [], [], []
    for seed in range(repeats):
        tokens, seconds = one_tune(handle, seed, sampling, guidance)
        times.append(seconds)
        lengths.append(len(tokens) - 4)
        bars.append(tokens.count(BAR))
    return {
        "median_seconds_per_tune": round(statistics.median(times), 3),
        "median_tokens": statistics.median(lengths),
        "median_bars": statistics.median(bars),
        "tokens_per_second": round(sum(lengths) / sum(times), 1),
        "seconds_per_bar": round(sum(times) / max(sum(bars), 1), 4),
        "tunes": repeats,
    }


def evaluated(test: dict) -> tuple[str, float]:
    """The sampling and metre guidance `genlab eval` generated its tunes with."""
    generated = test.get("generated", {})
    return generated.get("sampling", "metre"), float(generated.get("guidance", 0.0))


def save_seconds(pieces, stem: str, suffixes: tuple[str, ...]) -> dict[str, float]:
    """Seconds to save generated `pieces` (anything with `.save(path)`) in each format, by suffix."""
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        for suffix in suffixes:
            start = time.perf_counter()
            pieces.save(Path(folder) / f"{stem}{suffix}")
            out[suffix] = round(time.perf_counter() - start, 3)
    return out


def rendering(handle) -> dict[str, float]:
    """Seconds to save one generated tune in each format."""
    tunes = handle.generate(meter=REEL.meter, mode=REEL.mode, tune_type=REEL.tune_type, n=1, seed=0)
    return save_seconds(tunes, "tune", (".abc", ".mid", ".musicxml", ".png", ".wav"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--guidance", type=float, default=2.0, help="also time metre sampling at this guidance")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    handle = genlab.load(args.run)
    report = handle.report
    test = report.get("test", {})
    result = {
        "run": str(args.run),
        "training_cpu_seconds": report.get("cost", {}).get("cpu_seconds"),
        "nll_per_note": {
            "transformer": test.get("nll_per_note"),
            **{name: b.get("nll_per_note") for name, b in test.get("baselines", {}).items()},
        },
        "baselines": test.get("baselines"),
        "generated": test.get("generated"),
        # the grammar alone, as `genlab eval` sampled (its sampling and metre guidance), and the model alone
        "generation_32_bar_reel": {
            f"{s} guidance {g}": generation(handle, args.repeats, s, g)
            for s, g in dict.fromkeys([("metre", 0.0), evaluated(test), ("metre", args.guidance), ("free", 0.0)])
        },
        "save_seconds": rendering(handle),
        "threads": 1,
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
