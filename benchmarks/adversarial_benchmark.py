"""Adversarial training on this machine: standard vs FGSM with random start vs PGD, per dataset.

For each shipped recipe `<dataset>-robust-{standard,fgsm-rs,pgd}`: train it (`genlab train`), then
`genlab eval` it — clean accuracy and accuracy under PGD-50 with 10 restarts on the first 1,000 test
images — and attack the same model, on the same images, with a second, independent PGD: the
adversarial-robustness-toolbox's (ART 1.20.1, `pip install genlab[robustness]`). Cost comes from each
run's ledger (training FLOPs counted by torch's FLOP counter, training seconds); the per-epoch held-out
PGD accuracy from its report (catastrophic overfitting shows there).

Targets (issue 12, Fashion-MNIST eps = 0.1): FGSM-RS robust accuracy >= 5x the standard model's and
within 5 points of PGD training, at <= 1/3 of PGD training's cost; ART within 1 point of ours.

    GENLAB_THREADS=1 nice -n 5 python benchmarks/adversarial_benchmark.py                # fashion (~20 min)
    GENLAB_THREADS=1 nice -n 5 python benchmarks/adversarial_benchmark.py --datasets fashion mnist
    python benchmarks/adversarial_benchmark.py --dry-run --out /tmp/adv   # tiny data, seconds; keeps results
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import genlab
from genlab.api import fit
from genlab.core.distributed import DistEnv
from genlab.core.run import RunDir
from genlab.core.threads import configure_threads
from genlab.data.images import write_mnist_subset
from genlab.evaluation.adversarial import predict
from genlab.tasks import TASKS, load_recipe

METHODS = ("standard", "fgsm-rs", "pgd")
DATASETS = {"fashion": "Fashion-MNIST", "mnist": "MNIST (5k subset)"}
RESULTS = Path(__file__).resolve().parent / "results" / "adversarial"


def art_robust_accuracy(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    epsilon: float,
    steps: int,
    restarts: int,
    step_size: float,
    batch_size: int,
) -> dict:
    """Accuracy under the adversarial-robustness-toolbox's L-inf PGD (its PyTorch implementation): the
    same threat model and settings as ours, none of our code."""
    from art.attacks.evasion import ProjectedGradientDescent  # optional dependency: only this check needs it
    from art.estimators.classification import PyTorchClassifier

    classifier = PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(1, 28, 28),
        nb_classes=int(model.head.out_features),
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    np.random.seed(0)  # ART draws its random starts from numpy's global generator
    attack = ProjectedGradientDescent(
        classifier,
        norm=np.inf,
        eps=epsilon,
        eps_step=step_size,
        max_iter=steps,
        num_random_init=restarts,
        batch_size=batch_size,
        verbose=False,
    )
    start = time.perf_counter()
    adversarial = attack.generate(x=images.numpy(), y=labels.numpy())
    seconds = time.perf_counter() - start
    assert np.abs(adversarial - images.numpy()).max() <= epsilon + 1e-5  # its examples obey the threat model
    correct = predict(model, torch.from_numpy(adversarial)) == labels
    return {"robust_accuracy": correct.float().mean().item(), "seconds": round(seconds, 1)}


def run_method(dataset: str, method: str, args: argparse.Namespace, runs: Path) -> dict:
    recipe, run = f"{dataset}-robust-{method}", runs / f"{dataset}-robust-{method}"
    if not (args.reuse and (run / "checkpoints" / "last" / "meta.json").is_file()):
        fit(recipe, run, [*args.overrides, "train.progress=false"])
    handle = genlab.load(run)
    ours = handle.evaluate(limit=args.limit, steps=args.steps, restarts=args.restarts)
    images, labels = handle.test_split()
    n = args.limit or len(labels)
    images, labels = images[:n], labels[:n]
    second = art_robust_accuracy(
        handle.model,
        images,
        labels,
        ours["epsilon"],
        ours["steps"],
        ours["restarts"],
        ours["step_size"],
        handle.recipe.eval.batch_size,
    )
    cost = handle.report["cost"]
    if method == "fgsm-rs":
        handle.generate(n=16, seed=0).save(args.out / f"{dataset}_adversarial_examples.png")
    return {
        "recipe": recipe,
        "clean_accuracy": ours["clean_accuracy"],
        "robust_accuracy": ours["robust_accuracy"],
        "attack": {k: ours[k] for k in ("attack", "epsilon", "step_size", "steps", "restarts")},
        "test_images": ours["test_images"],
        "eval_seconds": ours["eval_seconds"],
        "art_robust_accuracy": second["robust_accuracy"],
        "art_seconds": second["seconds"],
        "art_minus_ours_points": round(100 * (second["robust_accuracy"] - ours["robust_accuracy"]), 2),
        "train_seconds": cost["train_seconds"],
        "train_flops": cost["train_flops"],
        "epochs": handle.recipe.train.epochs,
        "train_epsilon": handle.recipe.train.epsilon,
        "per_epoch": ours["per_epoch"],
        "catastrophic_overfitting": ours["catastrophic_overfitting"],
    }


def step_timing(dataset: str, overrides: list[str], rounds: int, steps: int) -> dict:
    """Seconds per training step of each method, measured in interleaved rounds in this one process (the
    median round): a time ratio that a busy machine's drifting load shifts far less than the runs' ledgers."""
    trainings = {}
    for method in METHODS:
        recipe = load_recipe(f"{dataset}-robust-{method}", overrides)
        torch.manual_seed(recipe.seed)
        with tempfile.TemporaryDirectory() as tmp:
            trainings[method] = TASKS["image_classifier"].training(recipe, DistEnv(), RunDir(tmp))
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for _ in range(rounds):
        for method, training in trainings.items():
            batch = torch.arange(training.recipe.data.batch_size)
            start = time.perf_counter()
            for step in range(steps):
                training.train_step(batch, step + training.warmup_steps)  # past any epsilon warm-up
            times[method].append((time.perf_counter() - start) / steps)
    median = {m: statistics.median(t) for m, t in times.items()}
    return {
        "rounds": rounds,
        "steps_per_round": steps,
        "seconds_per_step": {m: round(v, 5) for m, v in median.items()},
        "fgsm_rs_over_pgd": round(median["fgsm-rs"] / median["pgd"], 3),
        "fgsm_rs_over_standard": round(median["fgsm-rs"] / median["standard"], 3),
    }


def verdict(rows: dict) -> dict:
    """The issue's targets, each with the figures it is decided by."""
    std, fgsm, pgd = (rows[m] for m in METHODS)
    flops_ratio = fgsm["train_flops"] / pgd["train_flops"]
    seconds_ratio = fgsm["train_seconds"] / pgd["train_seconds"]
    gap = 100 * (pgd["robust_accuracy"] - fgsm["robust_accuracy"])
    times = fgsm["robust_accuracy"] / std["robust_accuracy"] if std["robust_accuracy"] else float("inf")
    worst_art = max(abs(r["art_minus_ours_points"]) for r in rows.values())
    return {
        "fgsm_rs_over_standard_robust": round(times, 2) if times != float("inf") else "standard at 0",
        "fgsm_rs_at_least_5x_standard": bool(
            fgsm["robust_accuracy"] >= 5 * std["robust_accuracy"] and fgsm["robust_accuracy"] > 0
        ),
        "pgd_minus_fgsm_rs_points": round(gap, 2),
        "fgsm_rs_within_5_points_of_pgd": bool(gap <= 5),
        "fgsm_rs_over_pgd_flops": round(flops_ratio, 3),
        "fgsm_rs_over_pgd_seconds": round(seconds_ratio, 3),
        # Cost is decided by FLOPs (the ledger's count, the same on any machine); seconds on a shared CPU
        # are reported beside it, with their own verdict.
        "fgsm_rs_at_most_a_third_of_pgd_flops": bool(flops_ratio <= 1 / 3),
        "fgsm_rs_at_most_a_third_of_pgd_seconds": bool(seconds_ratio <= 1 / 3),
        "largest_art_difference_points": worst_art,
        "art_within_1_point": bool(worst_art <= 1),
    }


def plot(results: dict, out: Path) -> None:
    names = list(results["datasets"])
    figure = Figure(figsize=(13, 3.8 * len(names)))
    FigureCanvasAgg(figure)
    for row, name in enumerate(names):
        rows = results["datasets"][name]["methods"]
        eps = rows["standard"]["attack"]["epsilon"]
        bars = figure.add_subplot(len(names), 3, 3 * row + 1)
        x = np.arange(len(METHODS))
        bars.bar(x - 0.2, [rows[m]["clean_accuracy"] for m in METHODS], 0.4, label="clean")
        bars.bar(x + 0.2, [rows[m]["robust_accuracy"] for m in METHODS], 0.4, label="PGD-50x10 (genlab)")
        bars.plot(
            x + 0.2,
            [rows[m]["art_robust_accuracy"] for m in METHODS],
            "k_",
            markersize=22,
            mew=2,
            label="PGD-50x10 (ART)",
        )
        for i, m in enumerate(METHODS):
            for shift, key in ((-0.2, "clean_accuracy"), (0.2, "robust_accuracy")):
                bars.text(i + shift, rows[m][key] + 0.02, f"{rows[m][key]:.3f}", ha="center", fontsize=7)
        bars.set_xticks(x, METHODS)
        bars.set_ylim(0, 1.3)
        bars.set_title(
            f"{DATASETS[name]}, ε = {eps}: test accuracy ({rows['standard']['test_images'][4:]})", fontsize=9
        )
        bars.legend(fontsize=7, loc="upper center", ncol=3)
        curves = figure.add_subplot(len(names), 3, 3 * row + 2)
        for m in METHODS:
            epochs = rows[m]["per_epoch"]
            curves.plot([e["epoch"] for e in epochs], [e["pgd_accuracy"] for e in epochs], "o-", label=m)
        curves.set_xlabel("epoch")
        curves.set_ylabel("held-out PGD-10 accuracy")
        curves.set_ylim(0, 1)
        curves.set_title("per-epoch check (catastrophic overfitting = a collapse)", fontsize=9)
        curves.legend(fontsize=7)
        cost = figure.add_subplot(len(names), 3, 3 * row + 3)
        for m in METHODS:
            cost.scatter(rows[m]["train_flops"] / 1e12, rows[m]["robust_accuracy"], s=40)
            cost.annotate(
                f"{m} ({rows[m]['train_seconds']:.0f} s)",
                (rows[m]["train_flops"] / 1e12, rows[m]["robust_accuracy"]),
                fontsize=8,
                xytext=(4, 4),
                textcoords="offset points",
            )
        cost.set_xlabel("training TFLOPs (ledger)")
        cost.set_ylabel("PGD-50x10 accuracy")
        cost.set_ylim(0, 1)
        cost.set_title("robustness per unit of training cost", fontsize=9)
    figure.tight_layout()
    figure.savefig(out, dpi=110, metadata={"Software": None})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=["fashion"])
    parser.add_argument("--limit", type=int, default=1000, help="test images attacked (the first N)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--runs", type=Path, default=None, help="where the runs go (default: a temporary folder)")
    parser.add_argument("--reuse", action="store_true", help="evaluate runs already trained in --runs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--dry-run", action="store_true", help="tiny data and attacks: checks the script only")
    parser.add_argument(
        "--timing-only",
        action="store_true",
        help="only the interleaved step timing, added to the results already in --out",
    )
    parser.add_argument("--timing-rounds", type=int, default=5)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.overrides = []
    configure_threads()  # GENLAB_THREADS, as `genlab train` would: the step timing runs outside any run
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs or Path(tmp)
        if args.dry_run:
            tiny = write_mnist_subset(Path(tmp) / "tiny", train=512, test=100)
            args.overrides = [
                f"data.path={tiny}",
                "data.monitor_size=64",
                "data.batch_size=64",
                "train.epochs=2",
                "train.pgd_steps=2",
                "eval.monitor_steps=2",
            ]
            args.limit, args.steps, args.restarts = 100, 5, 2
        results = {
            "machine": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "processor": platform.processor(),
            },
            "second_implementation": "adversarial-robustness-toolbox "
            + __import__("art").__version__
            + " ProjectedGradientDescent",
            "dry_run": args.dry_run,
            "datasets": {},
        }
        timing_rounds, timing_steps = (1, 2) if args.dry_run else (args.timing_rounds, 10)
        if args.timing_only:
            results = json.loads((args.out / "adversarial_benchmark.json").read_text())
            for name in args.datasets:
                results["datasets"][name]["step_timing"] = step_timing(
                    name, args.overrides, timing_rounds, timing_steps
                )
                print(json.dumps(results["datasets"][name]["step_timing"]), flush=True)
            args.datasets = []
        for name in args.datasets:
            rows = {}
            for method in METHODS:
                print(f"{name} {method} ...", flush=True)
                rows[method] = run_method(name, method, args, runs)
                print(json.dumps({k: v for k, v in rows[method].items() if k != "per_epoch"}), flush=True)
            results["datasets"][name] = {
                "methods": rows,
                "targets": verdict(rows),
                "machine": results["machine"],
                "step_timing": step_timing(name, args.overrides, timing_rounds, timing_steps),
            }
            print(json.dumps(results["datasets"][name]["targets"], indent=2), flush=True)
    path = args.out / "adversarial_benchmark.json"
    if path.is_file():  # datasets not run this time keep their earlier results (each says its machine)
        earlier = json.loads(path.read_text())
        if earlier.get("dry_run") == args.dry_run:
            results["datasets"] = {**earlier["datasets"], **results["datasets"]}
    path.write_text(json.dumps(results, indent=2) + "\n")
    plot(results, args.out / "adversarial_benchmark.png")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
