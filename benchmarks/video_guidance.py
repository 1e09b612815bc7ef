"""Generation from a prompt, over the sampler's settings: guidance weight and Euler steps.

    python benchmarks/video_guidance.py --run runs/video --guidance 1 2 3 5 --steps 10 20

For each setting it draws the generation use on the same held-out clips as `genlab eval` (their digit pairs,
the same noise) and scores them as `genlab eval` does: the share of frames and of clips the pair reader reads
as the asked pair, the Fréchet distances of frames and of digit windows, and the speed deviation of the
tracked digits. Nothing is trained: it asks what the trained network gives at each setting. Writes
benchmarks/results/video/guidance.json and, with --img, a filmstrip per guidance weight of the same prompts.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import genlab
from genlab.data import load_image_dataset
from genlab.data.moving_mnist import MovingMNIST
from genlab.evaluation.classifier import load_evaluator
from genlab.evaluation.pair_reader import load_pair_reader
from genlab.io.video import GeneratedVideo
from genlab.tasks.video.handle import EVAL_SEED
from genlab.tasks.video.scoring import Judges, Uses, score_generate

PROMPTS = [(2, 9), (0, 1), (3, 7), (4, 4), (5, 8), (6, 1)]  # the pairs of docs/video.md's generation pictures


def score(handle, steps: int, guidance: float, test, train, judges: Judges) -> dict:
    uses = Uses(handle.model, handle.recipe.data.context, steps, guidance, EVAL_SEED, handle.recipe.eval.batch_size)
    start = time.process_time()
    scores = score_generate(uses, test, train, judges)
    return {
        "steps": steps,
        "guidance": guidance,
        "pair_accuracy": scores["pair_accuracy"],
        "clip_accuracy": scores["clip_accuracy"],
        "frame_fid": scores["frame_fid"],
        "digit_fid": scores["digit_fid"],
        "speed_deviation": scores["motion"]["speed_deviation"],
        "cpu_seconds": time.process_time() - start,
        "real_clips": scores["real_clips"],
    }


def pictures(handle, weights: list[float], steps: int, img: Path) -> None:
    """The six prompts at each guidance weight, the same noise: one filmstrip per weight."""
    digits = torch.tensor(PROMPTS)
    img.mkdir(parents=True, exist_ok=True)
    for w in weights:
        uses = Uses(handle.model, handle.recipe.data.context, steps, w, 0, len(PROMPTS))
        blank = torch.zeros(len(PROMPTS), handle.config.frames, handle.config.size, handle.config.size)
        GeneratedVideo(uses.draw("generate", blank, digits)).save(img / f"video_guidance_{w:g}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/video")
    parser.add_argument("--guidance", type=float, nargs="+", default=[1.0, 2.0, 3.0, 5.0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/video/guidance.json"))
    parser.add_argument("--img", type=Path, help="a folder for the filmstrips (one per guidance weight)")
    args = parser.parse_args()
    handle = genlab.load(args.run)
    data = load_image_dataset(handle.recipe.data.name, handle.recipe.data.path)
    test = MovingMNIST(data, "test", EVAL_SEED).batch(range(args.clips))
    train = MovingMNIST(data, "train", EVAL_SEED).batch(range(args.clips))
    judges = Judges(load_pair_reader(), load_evaluator("mnist"))
    rows = []
    for steps in args.steps:
        for w in args.guidance:
            rows.append(score(handle, steps, w, test, train, judges))
            r = rows[-1]
            print(
                f"steps {steps:3d} guidance {w:4g}: frames {r['pair_accuracy']:.3f} clips {r['clip_accuracy']:.3f} "
                f"frame FD {r['frame_fid']:.0f} digit FD {r['digit_fid']:.1f} speed dev {r['speed_deviation']:.3f}",
                flush=True,
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out = {"run": args.run, "clips": args.clips, "cost": handle.report.get("cost"), "rows": rows}
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    if args.img:
        pictures(handle, args.guidance, args.steps[0], args.img)


if __name__ == "__main__":
    main()
