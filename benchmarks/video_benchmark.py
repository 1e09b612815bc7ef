"""Moving MNIST video: the masked-frame flow run's three uses against baselines, and pictures to watch.

1. A ConvGRU predictor (genlab.models.conv_gru) trained on fresh training clips at the run's frame size
   (MSE loss), in its own process (`--train-baseline SECONDS`, beside the flow run's training); the
   comparison takes its snapshot at the flow run's training CPU seconds (its cost ledger).
2. Prediction (10 given -> 10) on `--clips` held-out clips: per-frame MSE and SSIM of the flow model
   (one sample, and the mean of `--mean-of` samples: closer to the conditional mean that MSE rewards),
   the ConvGRU and copy-last-frame.
3. The run's own evaluation (`genlab eval`: in-betweening, generation, motion, Fréchet distances).
4. Pictures: filmstrips real | flow | ConvGRU | copy-last, in-betweening, generation from prompts, a GIF
   of each; an MSE / SSIM curve over the horizon.

    python benchmarks/video_benchmark.py --train-baseline 480   # ConvGRU snapshots every 15 CPU s (beside the run)
    python benchmarks/video_benchmark.py --run runs/video       # results/video/, docs/img/
    python benchmarks/video_benchmark.py --train-baseline 40 --recipe R --baseline /tmp/g  # smoke, then:
    python benchmarks/video_benchmark.py --run RUN --baseline /tmp/g --clips 8 --out /tmp/v --img /tmp/v
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import matplotlib
import numpy as np
import torch
from safetensors.torch import load_file, save_file

import genlab
from genlab.data import load_image_dataset
from genlab.data.moving_mnist import MovingMNIST
from genlab.io.video import GeneratedVideo
from genlab.models.conv_gru import ConvGRUConfig, ConvGRUPredictor, prediction_loss
from genlab.tasks import load_recipe
from genlab.tasks.video.handle import EVAL_SEED
from genlab.tasks.video.pipeline import to_model, to_pixels
from genlab.tasks.video.scoring import Uses, curve

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SNAPSHOT_EVERY = 15  # CPU seconds between ConvGRU snapshots
PROMPTS = ["a 2 and a 9", "a 0 and a 1", "a 3 and a 7", "a 4 and a 4", "a 5 and a 8", "a 6 and a 1"]


def train_conv_gru(data, size: int, context: int, cpu_seconds: float, batch: int, folder: Path) -> None:
    """Train the ConvGRU for `cpu_seconds` of this process's CPU time, saving a snapshot every SNAPSHOT_EVERY
    CPU seconds (folder/cpu_NNNN.safetensors), so that the comparison can take the one at the flow run's cost."""
    torch.manual_seed(0)
    model = ConvGRUPredictor(ConvGRUConfig())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    clips = MovingMNIST(data, "train", seed=7)
    folder.mkdir(parents=True, exist_ok=True)
    start, step, losses, next_save = time.process_time(), 0, [], SNAPSHOT_EVERY
    while (spent := time.process_time() - start) < cpu_seconds:
        if spent >= next_save:
            save_file(model.state_dict(), folder / f"cpu_{int(next_save):04d}.safetensors")
            log = {
                "cpu_seconds": round(spent, 1),
                "steps": step,
                "clips_seen": step * batch,
                "loss": np.mean(losses[-20:]),
            }
            (folder / f"cpu_{int(next_save):04d}.json").write_text(json.dumps(log))
            next_save += SNAPSHOT_EVERY
        x = to_pixels(to_model(clips.batch(range(step * batch, (step + 1) * batch)).frames, size))
        loss = prediction_loss(model, x, context)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        step += 1


def load_conv_gru(folder: Path, cpu_seconds: float) -> tuple[ConvGRUPredictor, dict]:
    """The snapshot taken at the largest CPU time not over `cpu_seconds` (the flow run's training cost)."""
    snaps = sorted(folder.glob("cpu_*.safetensors"))
    fits = [p for p in snaps if int(p.stem[4:]) <= cpu_seconds] or snaps[:1]
    if not fits:
        raise SystemExit(f"no ConvGRU snapshots in {folder}: run with --train-baseline first")
    model = ConvGRUPredictor(ConvGRUConfig())
    model.load_state_dict(load_file(fits[-1]))
    return model.eval(), json.loads(fits[-1].with_suffix(".json").read_text())


def predictions(handle, model: ConvGRUPredictor, real: torch.Tensor, mean_of: int) -> dict[str, torch.Tensor]:
    """Whole clips (N, T, S, S) in [0, 1]: the given frames, then each method's prediction."""
    c = handle.recipe.data.context
    pixels = to_pixels(real)
    uses = [Uses(handle.model, c, handle.recipe.sample.steps, 1.0, EVAL_SEED + k, 100) for k in range(mean_of)]
    samples = [u.draw("predict", real) for u in uses]
    with torch.no_grad():
        gru = model(pixels[:, :c], real.size(1) - c)
    given = pixels[:, :c]
    return {
        "real": pixels,
        "flow": samples[0],
        f"flow mean of {mean_of}": torch.stack(samples).mean(0),
        "ConvGRU": torch.cat([given, gru], 1),
        "copy last frame": torch.cat([given, given[:, -1:].expand(-1, real.size(1) - c, -1, -1)], 1),
    }


def reference_curves(real: torch.Tensor, context: int) -> dict[str, dict]:
    """For scale, not methods: an all-black frame, and the per-pixel mean of the true frames (which no
    predictor knows: the MSE of the best single frame for every clip and horizon)."""
    future = real[:, context:]
    return {
        "all-black frame": curve(torch.zeros_like(future), future),
        "mean of the true frames": curve(future.mean(0, keepdim=True).expand_as(future), future),
    }


def plot_curves(curves: dict[str, dict], context: int, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, c in curves.items():
        frames = range(context + 1, context + 1 + len(c["mse_per_frame"]))
        axes[0].plot(frames, c["mse_per_frame"], marker="o", ms=3, label=name)
        axes[1].plot(frames, c["ssim_per_frame"], marker="o", ms=3, label=name)
    axes[0].set(xlabel="frame", ylabel="MSE (pixels in [0, 1])", title="prediction error")
    axes[1].set(xlabel="frame", ylabel="SSIM", title="structural similarity")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def pictures(handle, clips: dict[str, torch.Tensor], real: torch.Tensor, img: Path) -> None:
    rows = [clips[k][:2] for k in ("real", "flow", "ConvGRU", "copy last frame")]
    strip = torch.stack(rows, 1).reshape(-1, *real.shape[1:])  # per clip: real, flow, ConvGRU, copy-last
    GeneratedVideo(strip).save(img / "video_predict.png")
    GeneratedVideo(torch.stack([r[0] for r in rows])).save(img / "video_predict.gif")
    between = handle.generate(n=1, mode="between", input=[str(img / "_first.png"), str(img / "_last.png")], seed=0)
    fade_w = torch.linspace(0, 1, real.size(1))[:, None, None]
    fade = (1 - fade_w) * clips["real"][0, :1] + fade_w * clips["real"][0, -1:]
    GeneratedVideo(torch.stack([clips["real"][0], between.clips[0], fade])).save(img / "video_between.png")
    GeneratedVideo(torch.stack([clips["real"][0], between.clips[0], fade])).save(img / "video_between.gif")
    made = torch.cat([handle.generate(n=2, prompt=p, seed=i).clips for i, p in enumerate(PROMPTS)])
    GeneratedVideo(made).save(img / "video_generate.png")
    GeneratedVideo(made[::2]).save(img / "video_generate.gif")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="runs/video")
    parser.add_argument("--recipe", default="moving-mnist-video", help="the run's recipe (for --train-baseline)")
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--mean-of", type=int, default=4)
    parser.add_argument(
        "--train-baseline", type=float, default=0, help="train the ConvGRU for this many CPU s, then stop"
    )
    parser.add_argument("--baseline", type=Path, default=Path("benchmarks/runs/video-convgru"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/video"))
    parser.add_argument("--img", type=Path, default=Path("docs/img"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    args.img.mkdir(parents=True, exist_ok=True)
    recipe = load_recipe(args.recipe)
    data = load_image_dataset(recipe.data.name, recipe.data.path)
    if args.train_baseline:
        size, context, batch = recipe.model.size, recipe.data.context, recipe.data.batch_size
        return train_conv_gru(data, size, context, args.train_baseline, batch, args.baseline)
    handle = genlab.load(args.run)
    size, flow_cost = handle.config.size, handle.report["cost"]
    model, gru_cost = load_conv_gru(args.baseline, flow_cost["cpu_seconds"])
    test = MovingMNIST(data, "test", EVAL_SEED).batch(range(args.clips))
    real = to_model(test.frames, size)
    clips = predictions(handle, model, real, args.mean_of)
    c = recipe.data.context
    curves = {k: curve(v[:, c:], clips["real"][:, c:]) for k, v in clips.items() if k != "real"}
    plot_curves(curves, c, args.img / "video_prediction_curve.png")
    from PIL import Image

    Image.fromarray(test.frames[0, 0]).save(args.img / "_first.png")
    Image.fromarray(test.frames[0, -1]).save(args.img / "_last.png")
    pictures(handle, clips, real, args.img)
    for f in ("_first.png", "_last.png"):
        (args.img / f).unlink()
    evaluation = handle.evaluate(n=args.clips)
    timings = []
    for seed in range(3):  # what a user waits for: one 20-frame clip from a prompt (the network loaded)
        started = time.perf_counter()
        handle.generate(n=1, prompt="a 2 and a 9", seed=seed)
        timings.append(time.perf_counter() - started)
    result = {
        "run": str(args.run),
        "size": size,
        "clips": args.clips,
        "flow_training": {k: flow_cost[k] for k in ("steps", "examples_seen", "cpu_seconds", "train_flops")},
        "conv_gru_training": gru_cost,
        "prediction": curves,
        "prediction_references": reference_curves(clips["real"], c),
        "evaluation": evaluation,
        "seconds_per_generated_clip": round(float(np.median(timings)), 3),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": 1},
    }
    (args.out / "video_benchmark.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: {"mse": v["mse"], "ssim": v["ssim"]} for k, v in curves.items()}, indent=1))
    print(json.dumps({k: evaluation[k] for k in ("between", "generate")}, indent=1)[:3000])


if __name__ == "__main__":
    main()
