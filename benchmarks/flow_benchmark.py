"""Flow matching (`flow-fashion`) against the DCGAN (`dcgan-fashion`) on Fashion-MNIST, in one script.

1. Training at an equal budget under a shared, loaded CPU: the two runs take turns, `--rounds` rounds of
   `--minutes / --rounds` wall-clock minutes each (the trainer's cumulative `train.max_minutes`, raised
   every round, then `--resume`), so a change in the machine's load hits both alike. The CPU seconds each
   process got in its turns are recorded beside the wall-clock budget.
2. Quality: both scored by genlab's evaluator on `--samples` samples against the test split: FID,
   precision, recall, Inception-style score, rarest class share; the flow model at its recipe's
   sampling settings (10 Euler steps, guidance 1.75: 20 network evaluations per image) and unguided
   (w = 0: its unconditional flow, the like-for-like comparison with the unconditional DCGAN).
3. Sampling time per 1,000 images, both models, interleaved repeats (median).
4. The flow model's trade-off tables: FID / label accuracy against the guidance weight and against the
   number of Euler steps (`--table-samples` samples each).
5. Super-resolution 14x14 -> 28x28 of `--sr-images` test images (2x2 block means), with the unguided
   flow (the class is not given; one sample, and the mean of `--sr-samples`) against bicubic
   upsampling: PSNR and SSIM on [0, 1] pixels.
6. (`--captions-of`, a text model) caption accuracy on training and held-out captions against guidance.

    python benchmarks/flow_benchmark.py                   # 10 minutes each, then the scoring
    python benchmarks/flow_benchmark.py --minutes 0.3 --rounds 1 --samples 200 --table-samples 100 \
        --out /tmp/flow_smoke                              # smoke test; keeps the committed results
    python benchmarks/flow_benchmark.py --keep runs/flow-bench   # keep both trained runs there
    python benchmarks/flow_benchmark.py --super-resolution-of runs/flow-bench/flow   # step 5 alone
    python benchmarks/flow_benchmark.py --tables-of runs/flow-bench/flow             # step 4 alone
    python benchmarks/flow_benchmark.py --compare-of runs/flow-bench                 # steps 2-3 alone
    python benchmarks/flow_benchmark.py --editing-of runs/flow-bench/flow --out /tmp/edit   # the editing picture
    python benchmarks/flow_benchmark.py --captions-of runs/flow-fashion-text   # caption accuracy vs guidance
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import genlab
from genlab.api import fit
from genlab.data import load_image_dataset
from genlab.evaluation.classifier import features_and_probs, load_evaluator
from genlab.evaluation.image_eval import evaluate_samples
from genlab.io.images import GeneratedImages
from genlab.models.gan import sample_images
from genlab.models.unet import UNet
from genlab.tasks.flow.pipeline import class_labels, downsample, draw, to_model
from genlab.tasks.flow.process import evaluations_per_sample

RUNS = {"flow": "flow-fashion", "dcgan": "dcgan-fashion"}
SEED = 1234
SUMMARY_KEYS = ("fid", "precision", "recall", "min_class_fraction", "label_accuracy")


def train_in_turns(args: argparse.Namespace, workdir: Path) -> None:
    """Both recipes, `args.rounds` turns each of minutes/rounds wall-clock minutes, into workdir/<name>.
    What each got (steps, CPU-seconds, FLOPs) is in its report's cost ledger."""
    for r in range(1, args.rounds + 1):
        budget = args.minutes * r / args.rounds
        for name, recipe in RUNS.items():
            settings = [f"train.max_minutes={budget}", "train.progress=false"]
            if r == 1:
                _, report = fit(recipe, workdir / name, ["train.epochs=1000", *settings])
            else:
                _, report = fit(workdir / name, None, settings, resume=True)
            cost = report["cost"]
            print(f"round {r}: {name} at {cost['train_seconds']:.0f} s of training, step {cost['steps']}", flush=True)


def summary(metrics: dict) -> dict:
    return {k: metrics[k] for k in SUMMARY_KEYS if k in metrics}


def sampling_seconds(flow, dcgan, steps: int, guidance: float, n: int, repeats: int) -> dict:
    """Seconds per 1,000 images, interleaved repeats, median."""
    times = {"flow": [], "dcgan": []}
    labels = class_labels(flow, n, None)
    for i in range(repeats):
        start = time.perf_counter()
        draw(flow, n, i, labels, steps, guidance)
        times["flow"].append(time.perf_counter() - start)
        start = time.perf_counter()
        sample_images(dcgan, n, i)
        times["dcgan"].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) / n for name, t in times.items()}


def editing_picture(run: Path, out: Path) -> None:
    """docs/img/flow-editing.png: the first 8 test images; SDEdit at strength 0.6 toward another class;
    the kept upper half; the lower half redrawn with the image's own label (--mask). Through the
    handle's `generate`, as `genlab generate --init ... --mask ...` runs it."""
    handle = genlab.load(run)
    fashion = load_image_dataset("fashion-mnist")
    targets = [5, 9, 7, 3, 8, 4, 1, 0]
    mask = np.zeros((28, 28), np.uint8)
    mask[14:] = 255
    Image.fromarray(mask).save(out / "mask.png")
    rows: list[list[torch.Tensor]] = [[], [], [], []]
    for i, target in enumerate(targets):
        Image.fromarray(fashion.test_images[i]).save(out / f"input_{i}.png")
        image = torch.from_numpy(fashion.test_images[i]).float().div(255)[None]  # (1, 28, 28)
        kept = image.clone()
        kept[:, 14:] = 0.5
        edit = dict(n=1, seed=i, init=str(out / f"input_{i}.png"))
        rows[0].append(image)
        rows[1].append(handle.generate(label=target, strength=0.6, **edit).images[0])
        rows[2].append(kept)
        rows[3].append(handle.generate(label=int(fashion.test_labels[i]), mask=str(out / "mask.png"), **edit).images[0])
    GeneratedImages(torch.stack([x for row in rows for x in row]), nrow=8).save(out / "editing.png")


def trade_off_tables(flow: UNet, n: int, steps: int, guidance: float) -> dict:
    """FID / label accuracy of n samples against the guidance weight (at `steps`) and against the
    number of Euler steps (at `guidance`)."""
    fashion = load_image_dataset("fashion-mnist")
    evaluator = load_evaluator("fashion-mnist")
    labels = class_labels(flow, n, None)
    tables = {"table_samples": n, "guidance_table": [], "steps_table": []}
    for table, settings in (
        ("guidance_table", [(steps, w) for w in (0.0, 1.0, 1.5, 2.0, 3.0)]),
        ("steps_table", [(s, guidance) for s in (2, 4, 10, 20)]),
    ):
        for s, w in settings:
            metrics = evaluate_samples(draw(flow, n, SEED, labels, s, w), fashion, evaluator, requested_labels=labels)
            tables[table].append(
                {
                    "guidance": w,
                    "steps": s,
                    **summary(metrics),
                    "evaluations_per_image": evaluations_per_sample(s, w, True),
                }
            )
            print(table, tables[table][-1], flush=True)
    return tables


def caption_table(run: Path, n: int, guidances: list[float]) -> dict:
    """A text model's caption accuracy (how often the evaluator puts an image in its caption's class) on
    the training and the held-out captions against the guidance weight, n images per split (the captions
    in turn), and the held-out captions it follows worst."""
    handle = genlab.load(run)
    evaluator = load_evaluator(handle.recipe.data.name)
    table = {"run": str(run), "images_per_split": n, "steps": handle.recipe.sample.steps, "rows": []}
    for w in guidances:
        row = {"guidance": w}
        for split, held_out in (("train_captions", False), ("held_out_captions", True)):
            bank = handle.captions(held_out)
            rows = torch.arange(n) % len(bank.texts)
            images = draw(handle.model, n, SEED, bank.embeddings[rows], handle.recipe.sample.steps, w)
            with torch.no_grad():
                predicted = torch.from_numpy(features_and_probs(evaluator, images)[1].argmax(1))
                hit = (predicted == bank.labels[rows]).float()
            row[split] = hit.mean().item()
            if held_out:
                per_caption = {bank.texts[i]: hit[rows == i].mean().item() for i in range(len(bank.texts))}
                row["worst_held_out_captions"] = sorted(per_caption.items(), key=lambda kv: kv[1])[:5]
        table["rows"].append(row)
        print("captions", json.dumps(row), flush=True)
    return table


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, data range 1) of
    (N, 1, H, W) images in [0, 1], per image (N,)."""
    x = torch.arange(11) - 5.0
    g = torch.exp(-(x**2) / (2 * 1.5**2))
    window = (g[:, None] * g[None, :] / g.sum() ** 2)[None, None]  # (1, 1, 11, 11)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window)  # valid positions only, as the reference implementation

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of (N, 1, H, W) images in [0, 1], per image (N,)."""
    return -10 * torch.log10((a - b).pow(2).flatten(1).mean(1).clamp_min(1e-10))


def super_resolution(flow: UNet, n: int, steps: int, samples: int, out: Path) -> dict:
    """14x14 -> 28x28 on the first n test images: bicubic against the unguided flow (w = 0), one sample
    and the mean of `samples` samples (an estimate of the posterior mean, the image PSNR rewards)."""
    fashion = load_image_dataset("fashion-mnist")
    truth = torch.from_numpy(fashion.test_images[:n]).float().div(255).unsqueeze(1)  # (n, 1, 28, 28)
    low = downsample(truth, 2)  # (n, 1, 14, 14)
    bicubic = F.interpolate(low, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1)
    cond = class_labels(flow, n, None) if flow.config.conditioning == "class" else None
    drawn = torch.stack([draw(flow, n, SEED + i, cond, steps, 0.0, low_res=to_model(low)) for i in range(samples)])
    mean = drawn.mean(0)  # (n, 1, 28, 28)
    rows = [F.interpolate(low[:10], scale_factor=2, mode="nearest"), bicubic[:10], drawn[0, :10], mean[:10], truth[:10]]
    GeneratedImages(torch.cat(rows), nrow=10).save(out / "super_resolution.png")
    result = {
        "images": n,
        "steps": steps,
        "guidance": 0.0,
        "factor": 2,
        "samples_averaged": samples,
        "evaluations_per_image": {"flow_sample": steps, "flow_mean": steps * samples},
    }
    for name, images in (("bicubic", bicubic), ("flow_sample", drawn[0]), ("flow_mean", mean)):
        result[name] = {"psnr_db": psnr(images, truth).mean().item(), "ssim": ssim(images, truth).mean().item()}
    for name in ("flow_sample", "flow_mean"):
        result[f"{name}_psnr_gain_db"] = result[name]["psnr_db"] - result["bicubic"]["psnr_db"]
    print("super-resolution", json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget of each model")
    parser.add_argument("--rounds", type=int, default=5, help="turns each model takes")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--table-samples", type=int, default=2000)
    parser.add_argument("--timing-samples", type=int, default=500)
    parser.add_argument("--guidance", type=float, default=None, help="the flow model's w (default: its recipe's)")
    parser.add_argument("--sr-images", type=int, default=1000)
    parser.add_argument("--sr-samples", type=int, default=8, help="super-resolution samples averaged per image")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "flow"))
    parser.add_argument("--keep", default=None, help="train the runs into this folder (kept), not a temporary one")
    parser.add_argument("--super-resolution-of", default=None, help="a flow run: only score its super-resolution")
    parser.add_argument("--tables-of", default=None, help="a flow run: only make its guidance and steps tables")
    parser.add_argument("--editing-of", default=None, help="a flow run: only draw the editing picture")
    parser.add_argument("--captions-of", default=None, help="a text flow run: only its caption accuracy table")
    parser.add_argument("--caption-images", type=int, default=660, help="images per caption split (--captions-of)")
    parser.add_argument("--caption-guidance", type=float, nargs="+", default=[1.5, 2.0, 3.0, 4.0])
    parser.add_argument(
        "--compare-of",
        default=None,
        help="a folder with trained runs flow/ and dcgan/ (--keep): only score and time them",
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.super_resolution_of:
        handle = genlab.load(args.super_resolution_of)
        result = super_resolution(handle.model, args.sr_images, handle.recipe.sample.steps, args.sr_samples, out)
        (out / "super_resolution.json").write_text(json.dumps(result, indent=2) + "\n")
        return
    if args.editing_of:
        editing_picture(Path(args.editing_of), out)
        return
    if args.captions_of:
        result = caption_table(Path(args.captions_of), args.caption_images, args.caption_guidance)
        (out / "caption_accuracy.json").write_text(json.dumps(result, indent=2) + "\n")
        return
    if args.tables_of:
        handle = genlab.load(args.tables_of)
        sampling = handle.recipe.sample
        result = trade_off_tables(handle.model, args.table_samples, sampling.steps, sampling.guidance)
        (out / "trade_off_tables.json").write_text(json.dumps(result, indent=2) + "\n")
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.compare_of or args.keep or tmp)
        if not args.compare_of:
            train_in_turns(args, workdir)
        results = compare(args, workdir, out)
        if not args.compare_of:
            results["budget"] = {"minutes_each": args.minutes, "rounds": args.rounds}
            results.update(
                trade_off_tables(
                    genlab.load(workdir / "flow").model,
                    args.table_samples,
                    results["flow"]["steps"],
                    results["flow"]["guidance"],
                )
            )
            results["super_resolution"] = super_resolution(
                genlab.load(workdir / "flow").model, args.sr_images, results["flow"]["steps"], args.sr_samples, out
            )
    (out / "flow_benchmark.json").write_text(json.dumps(results, indent=2) + "\n")
    f, u, d = results["flow"], results["flow_unguided"], results["dcgan"]
    print(
        f"FID flow {f['fid']:.1f} (w={f['guidance']}), unguided {u['fid']:.1f}, DCGAN {d['fid']:.1f}: ratio "
        f"{results['fid_ratio']:.2f} / {results['fid_ratio_unguided']:.2f} (target <= 0.7); recall flow "
        f"{f['recall']:.2f} (target >= 0.5); label accuracy {f['label_accuracy']:.3f} (target >= 0.95)"
    )
    print(f"written to {out}")


def compare(args: argparse.Namespace, workdir: Path, out: Path) -> dict:
    """Steps 2 and 3 on the trained runs workdir/flow and workdir/dcgan; what each training got comes
    from its report's cost ledger."""
    fashion = load_image_dataset("fashion-mnist")
    evaluator = load_evaluator("fashion-mnist")
    flow_run, dcgan_run = genlab.load(workdir / "flow"), genlab.load(workdir / "dcgan")
    flow, generator = flow_run.model, dcgan_run.generator
    steps = flow_run.recipe.sample.steps
    guidance = flow_run.recipe.sample.guidance if args.guidance is None else args.guidance
    cost_keys = ("steps", "examples_seen", "train_seconds", "train_flops", "cpu_seconds", "wall_seconds", "sessions")
    results = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "training": {
            name: {k: run.report["cost"].get(k) for k in cost_keys}
            for name, run in (("flow", flow_run), ("dcgan", dcgan_run))
        },
        "num_samples": args.samples,
    }
    dcgan_images, _ = sample_images(generator, args.samples, SEED)
    results["dcgan"] = evaluate_samples(dcgan_images, fashion, evaluator)
    labels = class_labels(flow, args.samples, None)
    for name, w in (("flow", guidance), ("flow_unguided", 0.0)):
        images = draw(flow, args.samples, SEED, labels, steps, w)
        results[name] = evaluate_samples(images, fashion, evaluator, requested_labels=labels)
        results[name].update(steps=steps, guidance=w, evaluations_per_image=evaluations_per_sample(steps, w, True))
        GeneratedImages(images[:100], nrow=10).save(out / f"{name}_samples.png")
    GeneratedImages(dcgan_images[:100], nrow=10).save(out / "dcgan_samples.png")
    results["fid_ratio"] = results["flow"]["fid"] / results["dcgan"]["fid"]
    results["fid_ratio_unguided"] = results["flow_unguided"]["fid"] / results["dcgan"]["fid"]
    print("quality:", json.dumps({k: summary(results[k]) for k in ("flow", "flow_unguided", "dcgan")}), flush=True)
    results["sampling_seconds_per_1000"] = sampling_seconds(
        flow, generator, steps, guidance, args.timing_samples, repeats=3
    )
    return results


if __name__ == "__main__":
    main()
