"""Image tokens against the GAN and the flow model: images per second and FID, same machine, same script.

Three runs of Fashion-MNIST, each opened with `genlab.load` and drawn through its own `generate` (classes
in turn; the token model with a training caption of each class):
- the DCGAN (`dcgan-fashion`): one generator pass per image;
- the flow model (`flow-fashion`) at 2, 4, 10 (its shipped count) and 20 Euler steps, guidance 1.75;
- the token transformer (`vq-dalle-fashion` over `vqgan-fashion`): 49 tokens with a KV cache, guidance on
  the logits, then one VQGAN decoder pass.

`--quality` (one CPU slot): FID / precision / recall / label accuracy of `--samples` images each against the
test split in genlab's evaluator, the VQGAN's reconstructions scored the same way, and the training cost
(CPU seconds) from each run's ledger. `--speed` (alone on the machine: `heavy -2`): images per second for
`--batch` images per call, median of `--repeats` interleaved calls, with the load average before and after.
`--figures`: the pictures of docs/image-tokens.md. `--keep-baselines` keeps the committed quality.json's
rows (and training cost) of a baseline whose run is not in `--runs` and scores every run that is: every score
is a seeded draw of a fixed run, so rescoring the same baseline run gives the same numbers. `--emoji` scores
the colour emoji runs (runs/{vqgan-emoji,vq-dalle-emoji}): PSNR and codebook use on the held-out emoji,
the training cost, and their pictures (emoji.json).

    python benchmarks/image_tokens_benchmark.py --quality --runs runs      # runs/{dcgan,flow,vqgan,vq-dalle}
    python benchmarks/image_tokens_benchmark.py --speed --runs runs
    python benchmarks/image_tokens_benchmark.py --figures --runs runs
    python benchmarks/image_tokens_benchmark.py --quality --keep-baselines --figures --runs runs
    python benchmarks/image_tokens_benchmark.py --emoji --runs runs
    python benchmarks/image_tokens_benchmark.py --quality --speed --samples 100 --batch 50 --repeats 1 \
        --out /tmp/tokens_smoke --runs runs                               # smoke: keeps the committed results
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import genlab
from genlab.data import load_image_dataset
from genlab.evaluation.classifier import load_evaluator
from genlab.evaluation.image_eval import evaluate_samples
from genlab.io.images import GeneratedImages
from genlab.tasks.vqgan.pipeline import reconstruct, side_by_side

SEED = 1234
FLOW_STEPS = (2, 4, 10, 20)
FLOW_GUIDANCE = 1.75  # the flow recipe's own
KEYS = ("fid", "precision", "recall", "label_accuracy")
PROMPTS = [
    "a pair of trousers",
    "a dress",
    "a pair of sneakers",
    "a bag",
    "ankle boots",
    "a pullover",
    "here is a pair of jeans",  # held out: each word trained, never in this caption
    "an image of a leather tote bag",  # held out
    "a photo of a long evening dress",  # held out
    "here is tennis shoes",  # held out
]
EMOJI_PROMPTS = [
    "red apple",
    "green apple",
    "blue heart",
    "yellow heart",
    "orange book",
    "blue book",
    "cat",  # held out: test-split emoji, their names never trained
    "broken heart",
    "racing car",
    "books",
    "blue apple",  # no such emoji: a new combination of trained words
    "yellow book",
]


BASELINES = ("dcgan", "flow")


def generators(runs: Path, names: tuple[str, ...]) -> dict[str, Callable[[int, int], GeneratedImages]]:
    """Setting name -> draw(n, seed): images of every class in turn, through each run's `generate`, for the
    runs in `names` (dcgan, flow, vq-dalle)."""
    out: dict[str, Callable[[int, int], GeneratedImages]] = {}
    if "dcgan" in names:
        gan = genlab.load(runs / "dcgan")
        out["dcgan"] = lambda n, seed: gan.generate(n=n, seed=seed)
    if "flow" in names:
        flow = genlab.load(runs / "flow")
        for steps in FLOW_STEPS:
            out[f"flow {steps} steps"] = lambda n, seed, s=steps: flow.generate(
                n=n, seed=seed, steps=s, guidance=FLOW_GUIDANCE
            )
    dalle = genlab.load(runs / "vq-dalle")
    out["tokens (vq-dalle)"] = lambda n, seed: dalle.generate(n=n, seed=seed)
    return out


def training_cost(runs: Path, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """CPU seconds and steps of each named run's training (the ledger in report.json)."""
    cost = {name: json.loads((runs / name / "report.json").read_text())["cost"] for name in names}
    return {
        name: {"cpu_seconds": c["cpu_seconds"], "steps": c["steps"], "train_seconds": c["train_seconds"]}
        for name, c in cost.items()
    }


def quality(runs: Path, samples: int, kept: dict | None) -> dict:
    """The quality pass. With `kept` (the committed result), a baseline whose run is not in `runs` keeps its
    committed rows and training cost; every run that is there is drawn and scored."""
    fashion = load_image_dataset("fashion-mnist")
    evaluator = load_evaluator("fashion-mnist")
    missing = tuple(b for b in BASELINES if kept is not None and not (runs / b).is_dir())
    present = tuple(b for b in BASELINES if b not in missing)
    result: dict = {"samples": samples, "training": {}, "settings": {}}
    for name in missing:
        result["training"][name] = kept["training"][name]
        result["settings"] |= {k: v for k, v in kept["settings"].items() if k.startswith(name)}
    if missing:
        result["baselines_kept"] = f"{', '.join(missing)} rows from the previous --quality run of this script"
    result["training"] |= training_cost(runs, (*present, "vqgan", "vq-dalle"))
    both = sum(result["training"][name]["cpu_seconds"] for name in ("vqgan", "vq-dalle"))
    result["training"]["tokens (both stages)"] = {"cpu_seconds": both}
    for name, draw in generators(runs, present).items():
        drawn = draw(samples, SEED)
        metrics = evaluate_samples(drawn.images, fashion, evaluator, requested_labels=drawn.labels)
        result["settings"][name] = {k: metrics[k] for k in KEYS if k in metrics}
        print(name, result["settings"][name], flush=True)
    vqgan = genlab.load(runs / "vqgan")
    real, _ = fashion.tensors("test")
    recon, _ = reconstruct(vqgan.model, real[:samples])
    metrics = evaluate_samples(recon, fashion, evaluator)
    result["vqgan_reconstructions"] = {k: metrics[k] for k in KEYS if k in metrics}
    dalle = genlab.load(runs / "vq-dalle").evaluate(n=samples)
    result["caption_accuracy"] = dalle["caption_accuracy"]
    return result


def speed(runs: Path, batch: int, repeats: int) -> dict:
    """Images per second per setting: `batch` images per generate call, interleaved repeats, median."""
    draws = generators(runs, BASELINES)
    for draw in draws.values():  # warm-up: first calls pay for allocation
        draw(min(batch, 20), 0)
    seconds: dict[str, list[float]] = {name: [] for name in draws}
    for r in range(repeats):
        for name, draw in draws.items():
            start = time.perf_counter()
            draw(batch, r)
            seconds[name].append(time.perf_counter() - start)
    return {name: {"images_per_second": batch / statistics.median(t), "seconds": t} for name, t in seconds.items()}


def figures(runs: Path, out: Path) -> None:
    """Reconstructions beside originals, the codebook-use histogram, prompt -> samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fashion = load_image_dataset("fashion-mnist")
    vqgan = genlab.load(runs / "vqgan")
    real, _ = fashion.tensors("test")
    picks = torch.randperm(len(real), generator=torch.Generator().manual_seed(SEED))[:40]
    recon, _ = reconstruct(vqgan.model, real[picks])
    GeneratedImages(side_by_side(real[picks], recon, 10), nrow=10).save(out / "vqgan-reconstructions.png")
    _, ids = reconstruct(vqgan.model, real)
    counts = np.sort(np.bincount(ids.flatten().numpy(), minlength=vqgan.config.codebook_size))[::-1]
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.bar(np.arange(len(counts)), counts / counts.sum(), width=1.0)
    ax.set(xlabel="code (sorted by use)", ylabel="share of held-out tokens", yscale="log")
    ax.set_title(f"{(counts > 0).sum()} of {len(counts)} codes used by the 10,000 test images")
    fig.tight_layout()
    fig.savefig(out / "vqgan-code-use.png", dpi=110)
    dalle = genlab.load(runs / "vq-dalle")
    rows = [dalle.generate(n=8, seed=i, prompt=p).images for i, p in enumerate(PROMPTS)]
    GeneratedImages(torch.cat(rows), nrow=8).save(out / "vq-dalle-prompts.png")
    dalle.generate(n=100, seed=SEED).save(out / "vq-dalle-classes.png")


def emoji(runs: Path, out: Path) -> dict:
    """The colour set: reconstruction of the held-out emoji, training cost, held-out emoji above their
    reconstructions and name -> samples."""
    vqgan, dalle = genlab.load(runs / "vqgan-emoji"), genlab.load(runs / "vq-dalle-emoji")
    recon = vqgan.evaluate()
    vqgan.generate(n=32, seed=SEED).save(out / "emoji-reconstructions.png")
    rows = [dalle.generate(n=8, seed=i, prompt=p).images for i, p in enumerate(EMOJI_PROMPTS)]
    GeneratedImages(torch.cat(rows), nrow=8).save(out / "emoji-prompts.png")
    cost = {
        name: json.loads((runs / name / "report.json").read_text())["cost"]["cpu_seconds"]
        for name in ("vqgan-emoji", "vq-dalle-emoji")
    }
    keys = ("psnr_db", "codebook_use", "perplexity", "codebook_size", "num_images")
    return {"reconstruction": {k: recon[k] for k in keys}, "training_cpu_seconds": cost, "prompts": EMOJI_PROMPTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--figures", action="store_true")
    parser.add_argument("--keep-baselines", action="store_true")
    parser.add_argument("--emoji", action="store_true")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/image_tokens"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    machine = {"processor": platform.processor(), "threads": torch.get_num_threads(), "torch": torch.__version__}
    if args.quality:
        kept = json.loads((args.out / "quality.json").read_text()) if args.keep_baselines else None
        result = {"machine": machine, **quality(args.runs, args.samples, kept)}
        (args.out / "quality.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.speed:
        load_before = os.getloadavg()
        result = {"machine": machine, "batch": args.batch, "repeats": args.repeats, "load_before": load_before}
        result["settings"] = speed(args.runs, args.batch, args.repeats)
        result["load_after"] = os.getloadavg()
        print(json.dumps(result["settings"], indent=1), result["load_before"], result["load_after"])
        (args.out / "speed.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.figures:
        figures(args.runs, args.out)
    if args.emoji:
        (args.out / "emoji.json").write_text(json.dumps({"machine": machine, **emoji(args.runs, args.out)}, indent=2))


if __name__ == "__main__":
    main()
