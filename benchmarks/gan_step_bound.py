"""How close to the fp32 matmul ceiling can the essay's MLP GAN step get at all? An upper bound, measured.

The GAN benchmark reports genlab's step as a fraction of the ceiling (a large square matmul, measured in
the same run). This script asks what that fraction could be if everything but the algorithm's own work
cost nothing: it profiles genlab's step (the essay recipe at batch 128, without R1 — the benchmark's
setting), lists the matrix products of one step with their shapes, times each alone (warm, repeated, the
same threads), and times the two Adam updates and the EMA update alone (memory-bound work on every
parameter that the algorithm fixes). Bound = the step's FLOPs / (those times) / the ceiling.

    python benchmarks/gan_step_bound.py          # ~1 minute, writes results/gan_step_bound.json
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_benchmark import matmul_gflops  # noqa: E402  (the same ceiling as the throughput benchmark)

from genlab.api import fit  # noqa: E402
from genlab.core.ema import update_ema  # noqa: E402
from genlab.tasks.gan import training as gan_task  # noqa: E402

PROFILED = range(10, 40)  # the calls of train_step profiled: after warm-up, before the period's end


def seconds(fn, repeats: int) -> float:
    """Median of 5 timings of `repeats` calls, per call."""
    for _ in range(max(3, repeats // 10)):
        fn()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        times.append((time.perf_counter() - start) / repeats)
    return statistics.median(times)


def gemm(name: str, shapes: list[tuple[int, ...]]) -> tuple[int, float]:
    """(FLOPs, seconds alone) of one aten::mm / aten::addmm with the profiled input shapes."""
    if name == "aten::addmm":
        bias, a, b = (torch.randn(*s) for s in shapes[:3])
        call = lambda: torch.addmm(bias, a, b)  # noqa: E731
    else:
        a, b = torch.randn(*shapes[0]), torch.randn(*shapes[1])
        call = lambda: a @ b  # noqa: E731
    return 2 * a.shape[0] * a.shape[1] * b.shape[1], seconds(call, 200)


def profiled_run(workdir: Path, steps: int) -> tuple[dict, profile, gan_task.GanTraining]:
    """genlab's own training of the essay recipe, steps PROFILED recorded with their input shapes."""
    recorder = profile(record_shapes=True)
    inner = gan_task.GanTraining.train_step
    seen: dict = {"steps": 0}

    def train_step(self, indices, step):
        call = seen["steps"]
        seen["steps"], seen["training"] = call + 1, self
        if call == PROFILED[0]:
            recorder.start()
        try:
            return inner(self, indices, step)
        finally:
            if call == PROFILED[-1]:
                recorder.stop()

    gan_task.GanTraining.train_step = train_step
    try:
        _, report = fit(
            "essay-mlp-mnist",
            workdir,
            [
                "data.name=fashion-mnist",
                f"data.limit={128 * steps}",
                "train.epochs=1",
                "train.r1_gamma=0.0",
                "train.progress=false",
            ],
        )
    finally:
        gan_task.GanTraining.train_step = inner
    return report, recorder, seen["training"]


def plot(result: dict, path: Path) -> None:
    """The measured step against its two bounds, as ms per step and as a fraction of the ceiling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [
        ("genlab's step", result["step_ms"], result["fraction_of_ceiling"]),
        ("its matmuls alone", result["gemms_alone_ms"], result["bound_gemms_only"]),
        (
            "matmuls + Adam + EMA alone",
            result["gemms_alone_ms"] + result["adam_alone_ms"] + result["ema_alone_ms"],
            result["bound_gemms_and_updates"],
        ),
    ]
    fig, ax = plt.subplots(figsize=(7, 2.6))
    for i, (_name, ms, fraction) in enumerate(bars):
        ax.barh(i, ms, color=("tab:blue", "tab:gray", "tab:orange")[i])
        ax.text(ms, i, f"  {ms:.1f} ms = {fraction:.0%} of the ceiling", va="center", fontsize=8)
    ax.set_yticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.6 * result["step_ms"])
    ax.set_xlabel("ms per step (essay MLP GAN, batch 128)")
    ceiling = statistics.median(result["matmul_ceiling_gflops"])
    ax.set_title(f"fraction of the fp32 matmul ceiling ({ceiling:.0f} GFLOP/s): measured and bounds", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="steps of the genlab run whose speed is measured")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gan_step_bound.json")
    args = parser.parse_args()
    ceilings = [matmul_gflops()]
    with tempfile.TemporaryDirectory() as tmp:
        report, recorder, training = profiled_run(Path(tmp) / "run", args.steps)
    cost = report["cost"]
    step_seconds = 128 / cost["examples_per_second"]  # includes the profiled steps' slowdown: a bit pessimistic
    flops = cost["train_flops"] / cost["steps"]
    counts = collections.Counter(
        (e.name, tuple(tuple(s) for s in e.input_shapes if s))
        for e in recorder.events()
        if e.name in ("aten::mm", "aten::addmm")
    )
    rows, gemm_seconds, gemm_flops = [], 0.0, 0
    for (name, shapes), count in sorted(counts.items()):
        per_step = count / len(PROFILED)
        f, s = gemm(name, list(shapes))
        gemm_seconds += per_step * s
        gemm_flops += per_step * f
        rows.append({"op": name, "shapes": shapes, "per_step": per_step, "gflops_alone": round(f / s / 1e9, 1)})

    # The updates alone: both Adam steps on gradients of the right shapes, and the EMA of G.
    for module in (training.modules["generator"], training.modules["discriminator"]):
        for p in module.parameters():
            p.grad = torch.randn_like(p)
    adam_seconds = seconds(lambda: [opt.step() for opt in training.optimizers.values()], 50)
    ema_seconds = seconds(lambda: update_ema(training.sampler, training.modules["generator"], 0.999, 10_000), 50)
    ceilings.append(matmul_gflops())
    ceiling = statistics.median(ceilings)

    def fraction(seconds_per_step: float) -> float:
        return round(flops / seconds_per_step / 1e9 / ceiling, 3)

    result = {
        "command": "python benchmarks/gan_step_bound.py",
        "measured_on": datetime.date.today().isoformat(),
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "matmul_ceiling_gflops": [round(c, 1) for c in ceilings],
        "step_flops": flops,
        "gemm_flops_profiled": round(gemm_flops),
        "step_ms": round(1e3 * step_seconds, 2),
        "fraction_of_ceiling": fraction(step_seconds),
        "gemms_alone_ms": round(1e3 * gemm_seconds, 2),
        "adam_alone_ms": round(1e3 * adam_seconds, 2),
        "ema_alone_ms": round(1e3 * ema_seconds, 2),
        "bound_gemms_only": fraction(gemm_seconds),
        "bound_gemms_and_updates": fraction(gemm_seconds + adam_seconds + ema_seconds),
        "gemms": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out.with_suffix(".png"))
    print(
        f"step {result['step_ms']} ms = {result['fraction_of_ceiling']:.0%} of the ceiling "
        f"({ceiling:.0f} GFLOP/s); its matmuls alone {result['gemms_alone_ms']} ms "
        f"(bound {result['bound_gemms_only']:.0%}); + Adam {result['adam_alone_ms']} ms + EMA "
        f"{result['ema_alone_ms']} ms (bound {result['bound_gemms_and_updates']:.0%}); written to {args.out}"
    )


if __name__ == "__main__":
    main()
