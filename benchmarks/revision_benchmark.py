"""The hot paths of this checkout against a git revision, interleaved in one run: a restructuring must not slow them.

Measured on each side, alternating side by side in fresh processes so that the machine's load falls on both alike:
- decoding: tokens/s of `generate` (KV cache, greedy, 256 new tokens after 16) for the char GPT in the GPT-2 and
  the Llama layout at batch 1, and the GPT-2 layout at batch 8 — the settings of benchmarks/generation_benchmark.py;
- the GAN step: images/s of the essay recipe's training step (batch 128, no R1 — gan_benchmark.py's setting), built
  through the task registry as `genlab train` builds it.
Each figure is the median over rounds; the ratio after / before is what the check reads (1.00 = unchanged).

    python benchmarks/revision_benchmark.py --before e517a66   # -> benchmarks/results/revision.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from startup_benchmark import export_revision

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "revision.json"

# Runs inside a fresh process on either side: only APIs both revisions share.
WORKER = r"""
import json, sys, tempfile, time
import torch
torch.set_num_threads(2)
case = sys.argv[1]
if case == "gan_step":
    from genlab.core.distributed import DistEnv
    from genlab.core.run import RunDir
    from genlab.tasks import TASKS, load_recipe
    recipe = load_recipe("essay-mlp-mnist", ["train.r1_gamma=0", "train.progress=false"])
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        training = TASKS["gan"].training(recipe, DistEnv(), RunDir(folder))
        order = torch.randperm(training.num_examples, generator=torch.Generator().manual_seed(0))
        batch = recipe.data.batch_size
        def steps(first, n):
            for step in range(first, first + n):
                start = (step * batch) % (training.num_examples - batch)
                training.train_step(order[start : start + batch], step)
        steps(0, 30)  # warm-up
        begin = time.perf_counter()
        steps(30, 300)
        print(json.dumps(300 * batch / (time.perf_counter() - begin)))
else:
    from genlab.models.generation import generate
    from genlab.models.transformer import Transformer, TransformerConfig
    layout, batch = case.split("-b")
    extra = {"positions": "rotary", "norm": "rmsnorm", "activation": "swiglu"} if layout == "llama" else {}
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=80, block_size=272, n_layer=4, n_head=4, n_embd=128, **extra))
    model.eval()
    prompt = torch.randint(80, (int(batch), 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        generate(model, prompt, 16, temperature=0.0)  # warm-up
        begin = time.perf_counter()
        generate(model, prompt, 256, temperature=0.0)
    print(json.dumps(256 * int(batch) / (time.perf_counter() - begin)))
"""
CASES = ("gpt2-b1", "llama-b1", "gpt2-b8", "gan_step")


def run_case(source: Path, case: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(source), "GENLAB_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, case], cwd=source, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{case} failed in {source}:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="REF", required=True, help="the git revision to compare against")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = {
        "command": " ".join(["python", "benchmarks/revision_benchmark.py", *sys.argv[1:]]),
        "machine": {"processor": platform.machine(), "threads": 2, "python": platform.python_version()},
        "rounds": args.rounds,
        "load_average_1min_before": round(os.getloadavg()[0], 2),
    }
    samples: dict[str, dict[str, list[float]]] = {case: {"before": [], "after": []} for case in CASES}
    with tempfile.TemporaryDirectory() as scratch:
        sides = {"before": export_revision(args.before, Path(scratch)), "after": ROOT}
        for round_index in range(args.rounds):
            for case in CASES:
                order = ("before", "after") if round_index % 2 == 0 else ("after", "before")
                for side in order:
                    samples[case][side].append(run_case(sides[side], case))
            print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)
    result["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    unit = {case: "images/s" if case == "gan_step" else "tokens/s" for case in CASES}
    result["cases"] = {
        case: {
            "unit": unit[case],
            "before": round(statistics.median(s["before"]), 1),
            "after": round(statistics.median(s["after"]), 1),
            "ratio_after_over_before": round(statistics.median(s["after"]) / statistics.median(s["before"]), 3),
            "samples": s,
        }
        for case, s in samples.items()
    }
    result["before"] = args.before
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({c: v["ratio_after_over_before"] for c, v in result["cases"].items()}, indent=2))


if __name__ == "__main__":
    main()
