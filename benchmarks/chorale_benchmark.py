"""Chorales: the held-out NLL per token of a trained run beside the n-gram's and the voice leading of its chorales
against Bach's (read from its report.json, written by `genlab eval RUN`), the time to generate one 16-bar chorale
and to harmonise a 16-bar soprano, and the time to write a chorale as MIDI, MusicXML, a piano roll and a WAV.

    genlab train bach-chorales --out runs/chorale && genlab eval runs/chorale
    python benchmarks/chorale_benchmark.py runs/chorale   # -> benchmarks/results/chorale/chorale_benchmark.json

The load average before and after is recorded (run it alone: nothing else busy on the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

import genlab
from genlab.data.chorales import load_chorales, split_sequences
from genlab.tasks.chorale.sampling import sample_grids, soprano_given

sys.path.insert(0, str(Path(__file__).resolve().parent))
from folk_benchmark import save_seconds  # noqa: E402 (a sibling script: the timing of writing each format)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "chorale" / "chorale_benchmark.json"
BARS = 16


def timed(fn, repeats: int) -> dict[str, float]:
    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        fn(seed)
        times.append(time.perf_counter() - start)
    return {"median_seconds": round(statistics.median(times), 3), "repeats": repeats}


def generation(handle, repeats: int) -> dict[str, dict[str, float]]:
    """Seconds for one 16-bar chorale (all four voices drawn), with the voice-leading rules and without, and for
    the lower voices under a 16-bar test soprano."""
    test = split_sequences(load_chorales(handle.recipe.data.path), "test")
    longest = max(test, key=len)
    steps = (len(longest) - 1) // 4
    soprano = [longest[1 + 4 * (s % steps)] for s in range(BARS * 16)]  # the longest test soprano (repeated if short)
    mode = longest[0][1:-1]
    tokens = BARS * 16 * 4

    def harmonise(seed: int) -> None:
        sample_grids(handle.model, mode, BARS * 16, 1, seed, given=soprano_given([soprano]))

    out = {
        "chorale_16_bars": timed(lambda seed: handle.generate(bars=BARS, n=1, seed=seed), repeats),
        "chorale_16_bars_free": timed(lambda s: handle.generate(bars=BARS, n=1, seed=s, sampling="free"), repeats),
        "harmonise_16_bars": timed(harmonise, repeats),
    }
    for row in out.values():
        row["tokens_per_second"] = round(tokens / row["median_seconds"], 1)
    return out


def writing(handle) -> dict[str, float]:
    chorales = handle.generate(bars=BARS, n=1, seed=0)
    return save_seconds(chorales, "chorale", (".mid", ".musicxml", ".png", ".wav"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    handle = genlab.load(args.run)
    report = handle.report
    test = report.get("test", {})
    result = {
        "run": str(args.run),
        "training_cpu_seconds": report.get("cost", {}).get("cpu_seconds"),
        "test": {k: test.get(k) for k in ("nll_per_token", "test_chorales", "baselines", "bach_test")},
        "generated": test.get("generated"),
        "harmonised": test.get("harmonised"),
        "generated_free": test.get("generated_free"),
        "harmonised_free": test.get("harmonised_free"),
        "generation": generation(handle, args.repeats),
        "writing_seconds": writing(handle),
        "threads": 1,
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result["generation"], indent=1))


if __name__ == "__main__":
    main()
