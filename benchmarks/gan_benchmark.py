"""genlab's GANs against the essay's GAN (bugs fixed, nothing more), in one run on this machine.

1. Throughput: the essay's MLP pair at batch 128 on Fashion-MNIST, genlab's trainer against the
   reference loop, interleaved rounds (images/s, ratio), and genlab's FLOP/s as a fraction of the fp32
   matmul ceiling measured in the same run.
2. Quality at equal wall-clock: genlab's `dcgan-fashion` recipe and the reference, each trained for
   the same budget, both scored by genlab's evaluator on 10,000 samples against the test split.

    python benchmarks/gan_benchmark.py                  # 10 minutes each (about 25 minutes in all)
    python benchmarks/gan_benchmark.py --minutes 0.5 --throughput-steps 20 --rounds 1 --samples 1000 \
        --out /tmp/gan_smoke.json                        # smoke test (~3 min); keeps the committed results
    python benchmarks/gan_benchmark.py --throughput-only # part 1 alone (~1 min), into the results file
                                                         # beside its quality section
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_essay_gan import sample_reference, train_reference  # noqa: E402

import genlab  # noqa: E402
from genlab.api import fit  # noqa: E402
from genlab.data import load_image_dataset  # noqa: E402
from genlab.evaluation.classifier import load_evaluator  # noqa: E402
from genlab.evaluation.image_eval import evaluate_samples  # noqa: E402
from genlab.io.images import GeneratedImages  # noqa: E402
from genlab.models.gan import sample_images  # noqa: E402
from genlab.tasks import load_recipe  # noqa: E402

NOMINAL_CEILING_GFLOPS = 140.0  # DESIGN.md §4: large fp32 matmul, 2 threads, this machine


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def genlab_throughput(steps: int, r1_gamma: float, workdir: Path, tag: str) -> dict:
    _, report = fit(
        "essay-mlp-mnist",
        workdir / tag,
        [
            "data.name=fashion-mnist",
            f"data.limit={128 * steps}",
            "train.epochs=1",
            f"train.r1_gamma={r1_gamma}",
            "train.progress=false",
        ],
    )
    cost = report["cost"]
    return {"images_per_second": cost["examples_per_second"], "flops_per_second": cost["train_flops_per_second"]}


def throughput(args: argparse.Namespace, workdir: Path) -> dict:
    fashion = load_image_dataset("fashion-mnist")
    recipe_gamma = load_recipe("essay-mlp-mnist").train.r1_gamma
    rounds = {"reference": [], "genlab": [], "genlab_recipe_r1": [], "genlab_flops": [], "ceiling_gflops": []}
    for i in range(args.rounds):  # interleaved, so machine noise hits both sides alike
        _, ref = train_reference(fashion.train_images, steps=args.throughput_steps, seed=i)
        rounds["reference"].append(ref["images_per_second"])
        rounds["ceiling_gflops"].append(matmul_gflops())  # the ceiling of the moment, beside genlab's run
        plain = genlab_throughput(args.throughput_steps, 0.0, workdir, f"plain{i}")
        rounds["genlab"].append(plain["images_per_second"])
        rounds["genlab_flops"].append(plain["flops_per_second"])
        rounds["genlab_recipe_r1"].append(
            genlab_throughput(args.throughput_steps, recipe_gamma, workdir, f"r1{i}")["images_per_second"]
        )
    ceiling = statistics.median(rounds["ceiling_gflops"])
    ref, ours, ours_r1 = (statistics.median(rounds[k]) for k in ("reference", "genlab", "genlab_recipe_r1"))
    flops = statistics.median(rounds["genlab_flops"]) / 1e9
    fractions = [f / 1e9 / c for f, c in zip(rounds["genlab_flops"], rounds["ceiling_gflops"])]
    # Ratios within a round share the machine's load at that moment: their median is the robust figure.
    ratios = [g / r for g, r in zip(rounds["genlab"], rounds["reference"])]
    ratios_r1 = [g / r for g, r in zip(rounds["genlab_recipe_r1"], rounds["reference"])]
    return {
        "steps_per_round": args.throughput_steps,
        "rounds": rounds,
        "reference_images_per_second": ref,
        "genlab_images_per_second": ours,
        "speedup": statistics.median(ratios),
        "speedup_per_round": ratios,
        "genlab_with_recipe_r1_images_per_second": ours_r1,
        "speedup_with_recipe_r1": statistics.median(ratios_r1),
        "genlab_gflops": flops,
        "matmul_ceiling_gflops_measured": ceiling,
        "fraction_of_measured_ceiling": statistics.median(fractions),
        "fraction_per_round": fractions,
        "fraction_of_nominal_140_gflops": flops / NOMINAL_CEILING_GFLOPS,
    }


def quality(args: argparse.Namespace, workdir: Path, out_dir: Path) -> dict:
    fashion = load_image_dataset("fashion-mnist")
    evaluator = load_evaluator("fashion-mnist")
    budget_s = args.minutes * 60
    run, report = fit(
        "dcgan-fashion",
        workdir / "dcgan",
        ["train.epochs=1000", f"train.max_minutes={args.minutes}", "train.progress=false", "train.sample_every=1000"],
    )
    generator = genlab.load(run).generator  # the last checkpoint's generator, in eval mode
    ours_images, _ = sample_images(generator, args.samples, seed=1234)
    ours = evaluate_samples(ours_images, fashion, evaluator)
    ours["train_seconds"] = report["cost"]["train_seconds"]
    ours["images_seen"] = report["cost"]["examples_seen"]

    reference_g, ref_info = train_reference(fashion.train_images, seconds=budget_s)
    ref_images = sample_reference(reference_g, args.samples)
    ref = evaluate_samples(ref_images, fashion, evaluator)
    ref["train_seconds"] = ref_info["seconds"]
    ref["images_seen"] = ref_info["steps"] * 128
    GeneratedImages(ours_images[:100], nrow=10).save(out_dir / "fashion_genlab_dcgan.png")
    GeneratedImages(ref_images[:100], nrow=10).save(out_dir / "fashion_reference.png")
    return {
        "budget_minutes": args.minutes,
        "num_samples": args.samples,
        "genlab_dcgan": ours,
        "reference": ref,
        "fid_ratio": ours["fid"] / ref["fid"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget of each side")
    parser.add_argument("--throughput-steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument(
        "--throughput-only", action="store_true", help="part 1 alone; the results file keeps its quality section"
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "gan_benchmark.json"))
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {
        "processor": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    with tempfile.TemporaryDirectory() as tmp:
        measured = {"throughput": throughput(args, Path(tmp))}
        if not args.throughput_only:
            measured["quality"] = quality(args, Path(tmp), out.parent)
    kept = json.loads(out.read_text()) if args.throughput_only and out.exists() else {}
    if kept:  # the two parts were measured at different times (and maybe on different machines)
        measured["throughput"]["measured_on"] = datetime.date.today().isoformat()
        measured["throughput"]["machine"] = machine
    results = {"machine": kept.get("machine", machine), **kept, **measured}
    out.write_text(json.dumps(results, indent=2) + "\n")
    t = results["throughput"]
    print(
        f"throughput: genlab {t['genlab_images_per_second']:.0f} img/s vs reference "
        f"{t['reference_images_per_second']:.0f} img/s = {t['speedup']:.2f}x (target >= 1.1x); "
        f"with the recipe's R1: {t['speedup_with_recipe_r1']:.2f}x; genlab at {t['genlab_gflops']:.1f} GFLOP/s = "
        f"{t['fraction_of_measured_ceiling']:.0%} of the measured matmul ceiling"
    )
    if args.throughput_only:
        return
    q = results["quality"]
    print(
        f"quality after {args.minutes} min each: genlab DCGAN FID {q['genlab_dcgan']['fid']:.2f} vs reference "
        f"{q['reference']['fid']:.2f} = {q['fid_ratio']:.2f}x (target <= 0.5)"
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
