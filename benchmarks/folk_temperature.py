"""Folk tunes: the statistics of tunes generated with the test tunes' headers at several sampling temperatures
and metre guidance weights (the recipe's eval section sets the default) — bars, key, histogram overlaps and the
mode/metre classifier against real tunes. A setting is TEMPERATURE, TEMPERATURE:GUIDANCE or
TEMPERATURE:GUIDANCE:SAMPLING (metre, beats).

    python benchmarks/folk_temperature.py runs/folk 0.8 0.9   # -> benchmarks/results/folk/temperature.json
    python benchmarks/folk_temperature.py runs/folk 1:0 1:1.5 1:0:beats 1:1.5:beats --out guidance.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import genlab
from genlab.data.folk import load_folk, split_tokens
from genlab.evaluation.folk_stats import score_tunes
from genlab.tasks.folk.evaluate import generated_tunes

RESULTS = Path(__file__).resolve().parent / "results" / "folk"


def main() -> None:
    args = sys.argv[1:]
    name = args.pop(args.index("--out") + 1) if "--out" in args else "temperature.json"
    args = [a for a in args if a != "--out"]
    run, settings = args[0], args[1:]
    handle = genlab.load(run)
    data = load_folk(handle.recipe.data.corpus, handle.recipe.data.path)
    block = handle.config.block_size
    test = [t[:block] for t in split_tokens(data, "test")]
    train = [t[:block] for t in split_tokens(data, "train")]
    out = {"run": run, "tunes": handle.recipe.eval.num_samples}
    for setting in settings:
        temperature, guidance, sampling = (setting.split(":") + ["", ""])[:3]
        handle.recipe.eval.temperature = float(temperature)
        handle.recipe.eval.guidance = float(guidance or handle.recipe.eval.guidance)
        handle.recipe.eval.sampling = sampling or handle.recipe.eval.sampling
        tunes = generated_tunes(handle, [t[:4] for t in test], handle.recipe.eval.num_samples, 0)
        out[setting] = score_tunes(tunes, test, train)
        out[setting]["guidance"] = handle.recipe.eval.guidance
        out[setting]["sampling"] = handle.recipe.eval.sampling
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / name).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({t: out[t]["classifier"] for t in out if t not in ("run", "tunes")}, indent=1))


if __name__ == "__main__":
    main()
