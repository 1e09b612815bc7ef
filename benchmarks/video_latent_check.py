"""Latent video runs: how much of the digits their autoencoder keeps, beside what the flow makes of them.

The flow of a latent run (model.latent > 0) can draw no sharper digits than its frame autoencoder gives
back, so this reads held-out clips after a round trip through the autoencoder the same way `genlab eval`
reads generated clips (the pair reader, genlab.evaluation.pair_reader): that pair accuracy is the
ceiling of the run's generation score. It writes it beside the run's evaluation (run `genlab eval RUN`
first) and its training cost.

    python benchmarks/video_latent_check.py --run runs/video-latent --out benchmarks/results/video/latent.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

import genlab
from genlab.data import load_image_dataset
from genlab.data.moving_mnist import MovingMNIST
from genlab.evaluation import video_eval
from genlab.evaluation.pair_reader import load_pair_reader, read_pairs
from genlab.tasks.video.handle import EVAL_SEED
from genlab.tasks.video.pipeline import to_model, to_pixels


def round_trip(handle, clips: int) -> dict:
    """Pixel error and SSIM of held-out clips decoded from their latents, and the digits read in them."""
    test = MovingMNIST(load_image_dataset(handle.recipe.data.name, handle.recipe.data.path), "test", EVAL_SEED)
    batch = test.batch(range(clips))
    real = to_model(batch.frames, handle.config.size)
    with torch.no_grad():
        back = to_pixels(handle.model.decode(handle.model.encode(real)))
    pixels, digits, reader = to_pixels(real), torch.from_numpy(batch.digits), load_pair_reader()
    read = {
        name: video_eval.pair_scores(read_pairs(reader, x)[0], digits)
        for name, x in (("real", pixels), ("round_trip", back))
    }
    return {
        "clips": clips,
        "mse": (back - pixels).pow(2).mean().item(),
        "ssim": video_eval.ssim(back, pixels).mean().item(),
        **read,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="runs/video-latent")
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/video/latent.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    handle = genlab.load(args.run)
    if handle.model.codec is None:
        raise SystemExit(f"{args.run} is not a latent run (model.latent is 0)")
    cost = handle.report["cost"]
    result = {
        "run": args.run,
        "model": dataclasses.asdict(handle.config),
        "training": {k: cost[k] for k in ("steps", "examples_seen", "cpu_seconds", "train_flops") if k in cost},
        "autoencoder_round_trip": round_trip(handle, args.clips),
        "evaluation": handle.report.get("video"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["autoencoder_round_trip"], indent=1))


if __name__ == "__main__":
    main()
