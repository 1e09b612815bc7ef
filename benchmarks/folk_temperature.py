"""Folk tunes: the statistics of tunes generated with the test tunes' headers at several sampling temperatures
(the recipe evaluates at 1.0) — bars, key, histogram overlaps and the mode/metre classifier against real tunes.

    python benchmarks/folk_temperature.py runs/folk 0.8 0.9   # -> benchmarks/results/folk/temperature.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import genlab
from genlab.data.folk import load_folk, split_tokens
from genlab.evaluation.folk_stats import score_tunes
from genlab.tasks.folk.evaluate import generated_tunes

RESULTS = Path(__file__).resolve().parent / "results" / "folk" / "temperature.json"


def main() -> None:
    run, temperatures = sys.argv[1], [float(t) for t in sys.argv[2:]]
    handle = genlab.load(run)
    data = load_folk(handle.recipe.data.corpus, handle.recipe.data.path)
    block = handle.config.block_size
    test = [t[:block] for t in split_tokens(data, "test")]
    train = [t[:block] for t in split_tokens(data, "train")]
    out = {"run": run, "tunes": handle.recipe.eval.num_samples}
    for temperature in temperatures:
        handle.recipe.eval.temperature = temperature
        tunes = generated_tunes(handle, [t[:4] for t in test], handle.recipe.eval.num_samples, 0)
        out[str(temperature)] = score_tunes(tunes, test, train)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({t: out[t]["classifier"] for t in out if t not in ("run", "tunes")}, indent=1))


if __name__ == "__main__":
    main()
