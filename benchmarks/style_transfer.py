"""Style transfer on glyphs: the figures and pictures of docs/style-transfer.md.

    python benchmarks/style_transfer.py pictures runs/zi2zi         # grids + lines of text -> docs/img/
    python benchmarks/style_transfer.py results runs/zi2zi          # its evaluation -> benchmarks/results/style/
    python benchmarks/style_transfer.py misread runs/p2p-kai-cjk-2t --tag p2p-kai-cjk   # what the judge misreads
    python benchmarks/style_transfer.py live runs/p2p-kai-cjk-ema --tag p2p-kai-cjk-ema   # without the EMA
    python benchmarks/style_transfer.py fewshot --base runs/zi2zi   # the few-shot curve over k, full vs LoRA
    python benchmarks/style_transfer.py pictures runs/fashion-edges --tag fashion-edges   # edges -> items grid
    python benchmarks/style_transfer.py table                       # the doc's table rows from the results

`fewshot` fine-tunes the base run to the unseen font of the zi2zi-fewshot recipe (LXGW WenKai) from its
k = 16, 64, 256 most frequent training characters, each by full fine-tuning and by LoRA, with the same number
of optimiser steps at every k (`--steps`, batch 16), evaluates each run on the held-out characters and
writes benchmarks/results/style/fewshot.json and the curve docs/img/style-fewshot.png. For each run it also
records what the run ships (LoRA: the RUN/adapter/ delta; full: the generator's weights) and how far the
LoRA generator rebuilt from its delta is from the one in its checkpoint (0: the same function). Run each with
GENLAB_THREADS=1: costs are CPU seconds of one core.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import genlab
from genlab.cli import main as genlab_main
from genlab.core.run import RunDir
from genlab.data.glyphs import render_glyph
from genlab.evaluation.classifier import features_and_probs
from genlab.evaluation.glyph_judges import glyph_judges
from genlab.io.images import make_grid
from genlab.tasks import load_recipe
from genlab.tasks.pix2pix.pipeline import load_library, load_pair, translate
from genlab.tasks.pix2pix.training import build_networks

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "style"
IMG = ROOT / "docs" / "img"
LINE = "生成式人工智能"


def save_picture(images: torch.Tensor, nrow: int, path: Path, scale: int = 1) -> None:
    grid = make_grid(images, nrow=nrow)
    picture = Image.fromarray(grid)
    if scale != 1:
        picture = picture.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    print(f"wrote {path}")


def pictures(run: str, tag: str) -> None:
    """Held-out characters (source | generated | truth, per font) and the line LINE in every learned font."""
    handle = genlab.load(run)
    data = handle.recipe.data
    glyphs = load_library(data)
    if data.kind != "glyphs":
        return item_pictures(handle, glyphs, tag)
    generator = handle.generator
    rows, per_row = [], 8
    chars = torch.as_tensor(glyphs.split("test")[:per_row])
    src = torch.from_numpy(glyphs.ink[glyphs.index(handle.source), chars]).unsqueeze(1)
    for font_id, font in enumerate(generator.config.fonts):
        if font not in data.targets:
            continue
        truth = torch.from_numpy(glyphs.ink[glyphs.index(font), chars]).unsqueeze(1)
        with torch.no_grad():
            made = generator(src, torch.full((len(chars),), font_id))
        rows += [1 - src, 1 - made, 1 - truth]
    save_picture(torch.cat(rows), per_row, IMG / f"style-{tag}-heldout.png")
    # the source's line, then per font the generated line and the font's own (a blank where it lacks a character)
    lines = [true_line(handle.source, data.size)]
    for font in data.targets:
        lines += [handle.generate(text=LINE, font=font).images, true_line(font, data.size)]
    save_picture(torch.cat(lines), 1, IMG / f"style-{tag}-line.png")
    print("held-out characters shown:", "".join(glyphs.chars[i] for i in chars.tolist()))


def misread(run: str, tag: str) -> None:
    """The held-out glyphs of the recipe's first target that the character judge reads as another character:
    source, generated and true rows -> docs/img/style-TAG-misread.png."""
    handle = genlab.load(run)
    glyphs = load_library(handle.recipe.data)
    n = len(glyphs.split("test"))
    p = {k: v[:n] for k, v in handle.translated_pairs(glyphs).items()}  # the first target's rows
    judges = glyph_judges(glyphs, handle.recipe.eval.judge_epochs, seed=handle.recipe.seed)
    read = features_and_probs(judges.char, p["made"])[1].argmax(1)  # (n,) the characters the judge names
    wrong = torch.as_tensor(np.flatnonzero(read != p["chars"].numpy()))
    rows = torch.cat([p[k][wrong] for k in ("source", "made", "truth")])
    save_picture(1 - rows, len(wrong), IMG / f"style-{tag}-misread.png")
    print(f"{len(wrong)} of {n} misread:", "".join(glyphs.chars[i] for i in p["chars"][wrong].tolist()))


def item_pictures(handle, pictures, tag: str, per_row: int = 12) -> None:
    """Rows of held-out items: their edge maps, the items drawn from them, the true items (white on black,
    as Fashion-MNIST shows them)."""
    test = torch.as_tensor(pictures.split("test")[:per_row])
    src = torch.from_numpy(pictures.ink[0, test]).unsqueeze(1)  # (n, 1, S, S)
    made = translate(handle.generator, src, torch.zeros(len(test), dtype=torch.long))
    truth = torch.from_numpy(pictures.ink[1, test]).unsqueeze(1)
    save_picture(torch.cat([src, made, truth]), per_row, IMG / f"style-{tag}-heldout.png", scale=2)


def true_line(font: str, size: int) -> torch.Tensor:
    """LINE as `font` itself draws it: black on white (1, 1, S, len(LINE) S)."""
    blank = np.zeros((size, size), np.uint8)
    cells = [render_glyph(font, c, size) for c in LINE]
    ink = np.concatenate([blank if c is None else c for c in cells], axis=1)
    return 1 - torch.from_numpy(ink).float().div(255)[None, None]


def results(run: str, tag: str) -> None:
    report = genlab.load(run).report
    if "translation" not in report:
        sys.exit(f"run `genlab eval {run}` first")
    out = {"run": run, "cost": report["cost"], "translation": report["translation"], "machine": platform.machine()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{tag}.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {RESULTS / f'{tag}.json'}")


def live(run: str, tag: str) -> None:
    """The evaluation of a run that averages its generator's weights (train.ema_decay), redone with the live
    weights of the same checkpoint: what the average changed, all else equal -> report.json
    "translation_live" and benchmarks/results/style/TAG-live.json."""
    handle = genlab.load(run)
    handle.generator = load_pair(handle.run, live=True)[0]
    handle.eval_section = "translation_live"
    out = {"run": run, "cost": handle.report["cost"], "translation": handle.evaluate(), "weights": "live"}
    (RESULTS / f"{tag}-live.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {RESULTS / f'{tag}-live.json'}")


def trainable(recipe_overrides: list[str]) -> int:
    """Parameters a few-shot run trains in its generator (LoRA: the low-rank factors and style vectors)."""
    generator, _ = build_networks(load_recipe("zi2zi-fewshot", recipe_overrides))
    return sum(p.numel() for p in generator.parameters() if p.requires_grad)


def few_shot_run(base: str, method: str, k: int, steps: int, runs: Path) -> dict:
    epochs = max(1, math.ceil(steps * 16 / k))
    overrides = [
        f"train.init={base}",
        f"train.method={method}",
        f"data.shots={k}",
        f"train.epochs={epochs}",
        f"train.sample_every={epochs}",
        f"train.checkpoint_every={epochs}",
        "train.progress=false",
    ]
    out = runs / f"fewshot-{method}-{k}"
    if not (out / "report.json").is_file() or "translation" not in json.loads((out / "report.json").read_text()):
        assert genlab_main(["train", "zi2zi-fewshot", *overrides, "--out", str(out)]) == 0
        assert genlab_main(["eval", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    scores = report["translation"]
    keep = ("l1", "ssim", "font_accuracy", "char_accuracy", "char_top5_accuracy", "fid")
    return {
        "method": method,
        "k": k,
        "steps": report["cost"]["steps"],
        "cpu_seconds": report["cost"]["cpu_seconds"],
        "train_seconds": report["cost"]["train_seconds"],
        "train_flops": report["cost"]["train_flops"],
        "trainable_parameters": trainable(overrides),
        **shipped(out, method),
        **{key: scores[key] for key in keep},
        "copy_source": {key: scores["copy_source"][key] for key in keep},
    }


def shipped(out: Path, method: str) -> dict:
    """Bytes a run ships (LoRA: RUN/adapter/; full: the generator's weights) and, for LoRA, the largest
    difference between the generator rebuilt from the delta and the one in the checkpoint."""
    if method != "lora":
        return {"shipped_bytes": (out / "checkpoints" / "last" / "generator.safetensors").stat().st_size}
    from_delta = genlab.load(out).generator  # the handle opens a LoRA run from its delta
    from_checkpoint = load_pair(RunDir(out))[0]
    pictures = load_library(load_recipe("zi2zi-fewshot", []).data)
    src = torch.from_numpy(pictures.ink[pictures.index("wqy-microhei"), pictures.split("test")]).unsqueeze(1)
    fonts = torch.full((len(src),), len(from_delta.config.fonts) - 1)
    diff = (translate(from_delta, src, fonts) - translate(from_checkpoint, src, fonts)).abs().max().item()
    return {"shipped_bytes": sum(f.stat().st_size for f in (out / "adapter").iterdir()), "reload_max_diff": diff}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, key, title in zip(
        axes, ("font_accuracy", "char_accuracy", "ssim"), ("font judge", "character judge", "SSIM")
    ):
        for method in sorted({r["method"] for r in rows}):
            mine = sorted((r["k"], r[key]) for r in rows if r["method"] == method)
            ax.plot(*zip(*mine), marker="o", label=method)
        ax.axhline(rows[0]["copy_source"][key], color="grey", ls="--", label="copy the source")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k characters of the new font")
        ax.set_title(title)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    print(f"wrote {path}")


def fewshot(base: str, shots: list[int], methods: list[str], steps: int, runs: Path) -> None:
    rows = [few_shot_run(base, method, k, steps, runs) for method in methods for k in shots]
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"base": base, "steps": steps, "threads": os.environ.get("GENLAB_THREADS"), "load": os.getloadavg()}
    (RESULTS / "fewshot.json").write_text(json.dumps({**meta, "runs": rows}, indent=1) + "\n")
    for r in rows:
        print(
            f"{r['method']:5} k={r['k']:4} font {r['font_accuracy']:.3f} char {r['char_accuracy']:.3f} "
            f"ssim {r['ssim']:.3f} l1 {r['l1']:.4f} cpu {r['cpu_seconds']:.0f}s params {r['trainable_parameters']} "
            f"ships {r['shipped_bytes']} B"
        )
    plot(rows, IMG / "style-fewshot.png")
    # the grids of the k = 64 runs
    for method in methods:
        pictures(str(runs / f"fewshot-{method}-64"), f"fewshot-{method}-64")


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _glyph_row(name: str, fonts: str, minutes: str, m: dict) -> str:
    return (
        f"| {name} | {fonts} | {minutes} | {m['l1']:.3f} | {m['ssim']:.3f} | {_pct(m['font_accuracy'])} | "
        f"{_pct(m['char_accuracy'])} | {_pct(m['char_top5_accuracy'])} | {m['fid']:.0f} |"
    )


def table(tags: list[str]) -> None:
    """The markdown rows of docs/style-transfer.md's tables, from the committed results files."""
    for tag in tags:
        saved = json.loads((RESULTS / f"{tag}.json").read_text())
        t, minutes = saved["translation"], f"{saved['cost']['cpu_seconds'] / 60:.1f}"
        if "font_accuracy" not in t:  # pictures: L1 and SSIM beside the two baselines
            for name, m in ((tag, t), ("copying the edges", t["copy_source"]), ("the mean item", t["mean_target"])):
                print(f"| {name} | {minutes if m is t else ''} | {m['l1']:.3f} | {m['ssim']:.3f} |")
                minutes = ""
            continue
        print(_glyph_row(tag, str(len(t["fonts"])), minutes, t))
        print(_glyph_row("copying the source (same glyphs)", "", "", t["copy_source"]))
        if "train_chars" in t:
            print(_glyph_row("the same model on its training characters", "", "", t["train_chars"]))
        for font, m in t["per_font"].items() if len(t["fonts"]) > 1 else ():
            print(_glyph_row(f"&nbsp;&nbsp;{font}", "1", "", m))


def fewshot_table() -> None:
    saved = json.loads((RESULTS / "fewshot.json").read_text())
    for r in saved["runs"]:
        print(
            f"| {r['method']} | {r['k']} | {r['trainable_parameters']:,} | {r['shipped_bytes'] / 1024:,.0f} KB | "
            f"{r['steps']} | {r['cpu_seconds']:.0f} | {r['l1']:.3f} | {r['ssim']:.3f} | {_pct(r['font_accuracy'])} | "
            f"{_pct(r['char_accuracy'])} | {_pct(r['char_top5_accuracy'])} | {r['fid']:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["pictures", "results", "misread", "live", "fewshot", "table"])
    parser.add_argument("run", nargs="?")
    parser.add_argument("--tag", default="zi2zi")
    parser.add_argument("--tags", nargs="+", default=["zi2zi", "pix2pix-kai", "fashion-edges", "fashion-edges-l1"])
    parser.add_argument("--base", default="runs/zi2zi")
    parser.add_argument("--shots", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--methods", nargs="+", default=["full", "lora"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--runs", type=Path, default=ROOT / "benchmarks" / "runs" / "style")
    args = parser.parse_args()
    if args.what == "fewshot":
        fewshot(args.base, args.shots, args.methods, args.steps, args.runs)
    elif args.what == "table":
        table(args.tags)
        fewshot_table()
    elif args.run is None:
        parser.error(f"{args.what} needs a run directory")
    else:
        {"pictures": pictures, "results": results, "misread": misread, "live": live}[args.what](args.run, args.tag)


if __name__ == "__main__":
    main()
