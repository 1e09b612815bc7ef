"""genlab's char-GPT against the same model built from Hugging Face `transformers`' GPT-2 classes.

One run, one machine, both sides interleaved in rounds so that load from other processes falls on both:

1. Training: the `char-gpt-kjv` recipe. Both models start from the same weights (genlab's init,
   exported with `save_gpt2` and loaded by `GPT2LMHeadModel.from_pretrained`) and are trained by the
   same step function (`LMTraining.train_step`: same windows, AdamW groups, schedule, clipping); only the
   module differs. Reported: validation loss after equal steps (with its standard error over the
   evaluation batches) and training throughput in tokens/s.
2. Generation: batch 1, 256 new tokens, KV cache, greedy, for the same weights: genlab's `generate`
   against `transformers`' `generate`. The recipe's 64-token context cannot hold 256 new tokens, so
   this part uses the same architecture with a 320-position table (fresh weights; speed does not
   depend on their values). Both sides must produce the same tokens.

    python benchmarks/text_benchmark.py              # 2,000 steps each side
    python benchmarks/text_benchmark.py --quick      # smoke test: 20 steps, 32 new tokens
    python benchmarks/text_benchmark.py --quick --corpus tiny.txt --out /tmp/t.json   # the test suite's smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from genlab.core.distributed import DistEnv
from genlab.core.optim import adamw
from genlab.core.recipe import recipe_to_dict
from genlab.core.run import RunDir
from genlab.data.tokens import spaced_starts, windows
from genlab.interop.hf import save_gpt2
from genlab.models.generation import generate
from genlab.models.transformer import Transformer
from genlab.tasks import load_recipe
from genlab.tasks.lm.process import causal_lm_loss
from genlab.tasks.lm.training import LMTraining, model_config

RESULTS = Path(__file__).resolve().parent / "results" / "text_benchmark.json"


def hf_model(genlab_model: Transformer, folder: Path):
    from transformers import GPT2LMHeadModel

    save_gpt2(genlab_model, folder)
    return GPT2LMHeadModel.from_pretrained(str(folder))


def as_hf(task: LMTraining, folder: Path) -> LMTraining:
    """The same training (data, step function, optimiser settings) with its model swapped for HF's GPT-2."""
    model = hf_model(task.modules["model"], folder).train()
    t = task.recipe.train
    task.model, task.modules = model, {"model": model}
    task.optimizers = {"model": adamw(model, t.lr, t.betas, t.weight_decay)}
    return task


@torch.no_grad()
def val_loss(model: torch.nn.Module, tokens, block: int, batch: int, iters: int) -> tuple[float, float]:
    """(mean, standard error) of the causal loss over fixed validation batches."""
    model.eval()
    losses = [
        causal_lm_loss(model(windows(tokens, s, block)).logits, windows(tokens, s, block)).item()
        for s in spaced_starts(len(tokens), block, iters * batch).split(batch)
    ]
    model.train()
    return statistics.fmean(losses), statistics.stdev(losses) / math.sqrt(len(losses))


def train_rounds(tasks: dict[str, LMTraining], steps: int, round_steps: int, evals: int) -> dict:
    """Alternate `round_steps` steps of each side; evaluate both at `evals` equally spaced points."""
    recipe = tasks["genlab"].recipe
    d, seconds = recipe.data, dict.fromkeys(tasks, 0.0)
    curve = {name: [] for name in tasks}
    eval_at = {round(steps * (i + 1) / evals) for i in range(evals)}
    dummy = torch.arange(d.batch_size)  # the step draws its windows from the step number
    step = 0
    while step < steps:
        n = min(round_steps, steps - step)
        for name, task in tasks.items():
            start = time.perf_counter()
            for s in range(step, step + n):
                task.train_step(dummy, s)
            seconds[name] += time.perf_counter() - start
        step += n
        if any(step >= e > step - n for e in eval_at):
            for name, task in tasks.items():
                loss, se = val_loss(
                    task.modules["model"], task.tokens["validation"], d.block_size, d.batch_size, recipe.eval.eval_iters
                )
                curve[name].append({"step": step, "val_loss": round(loss, 4), "stderr": round(se, 4)})
            print(f"step {step}: " + ", ".join(f"{k} {v[-1]['val_loss']:.4f}" for k, v in curve.items()), flush=True)
    tokens = steps * d.batch_size * d.block_size
    return {
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "tokens_per_second": {k: round(tokens / v, 1) for k, v in seconds.items()},
        "val_curve": curve,
    }


def generation(recipe, vocab_size: int, new_tokens: int, repeats: int, folder: Path) -> dict:
    cfg = model_config(recipe, vocab_size)
    cfg.block_size = 64 + new_tokens
    torch.manual_seed(1)
    ours = Transformer(cfg).eval()
    theirs = hf_model(ours, folder).eval()
    prompt = torch.randint(5, vocab_size, (1, 16))
    times = {"genlab": [], "transformers": []}
    outputs = {}
    for _ in range(repeats):  # interleaved: each repeat times both sides back to back
        start = time.perf_counter()
        outputs["genlab"] = generate(ours, prompt, new_tokens, temperature=0)
        times["genlab"].append(time.perf_counter() - start)
        start = time.perf_counter()
        with torch.no_grad():
            outputs["transformers"] = theirs.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                use_cache=True,
                pad_token_id=0,
            )
        times["transformers"].append(time.perf_counter() - start)
    median = {k: statistics.median(v) for k, v in times.items()}
    return {
        "new_tokens": new_tokens,
        "repeats": repeats,
        "median_seconds": {k: round(v, 4) for k, v in median.items()},
        "tokens_per_second": {k: round(new_tokens / v, 1) for k, v in median.items()},
        "ratio_genlab_over_transformers": round(median["transformers"] / median["genlab"], 2),
        "same_tokens": bool(torch.equal(outputs["genlab"], outputs["transformers"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="training steps per side")
    parser.add_argument("--round-steps", type=int, default=50, help="steps per side before switching")
    parser.add_argument("--evals", type=int, default=4, help="validation points along the run")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="smoke test: 20 steps, 32 new tokens, 2 repeats")
    parser.add_argument(
        "--corpus",
        default="bible-kjv",
        help="the recipe's data.corpus: a corpus name or a .txt file (default bible-kjv, the recipe's)",
    )
    parser.add_argument("--out", type=Path, help=f"results JSON (default {RESULTS.name}; --quick writes none)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.round_steps, args.evals, args.new_tokens, args.repeats = 20, 10, 1, 32, 2
    torch.set_num_threads(args.threads)
    # One evaluation period of all the steps: the cosine schedule (over train.max_iters) ends at the last step.
    recipe = load_recipe(
        "char-gpt-kjv",
        [
            f"train.max_iters={args.steps}",
            f"train.eval_interval={args.steps}",
            f"data.corpus={args.corpus}",
            "train.progress=false",
        ],
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = RunDir(tmp / "tokens")
        run.create(recipe_to_dict(recipe))  # so the second task reuses the first one's token files
        tasks = {"genlab": LMTraining(recipe, DistEnv(), run)}
        tasks["transformers"] = as_hf(LMTraining(recipe, DistEnv(), run), tmp / "hf-init")
        training = train_rounds(tasks, args.steps, args.round_steps, args.evals)
        gen = generation(recipe, tasks["genlab"].tokenizer.vocab_size, args.new_tokens, args.repeats, tmp / "hf-gen")
    last = {k: v[-1] for k, v in training["val_curve"].items()}
    diff = last["genlab"]["val_loss"] - last["transformers"]["val_loss"]
    noise = math.hypot(last["genlab"]["stderr"], last["transformers"]["stderr"])
    tps = training["tokens_per_second"]
    import transformers

    results = {
        "command": "python benchmarks/text_benchmark.py " + " ".join(sys.argv[1:]),
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "threads": args.threads,
        },
        "recipe": "char-gpt-kjv",
        "corpus": args.corpus,
        "steps_per_side": args.steps,
        "training": {
            **training,
            "final_val_loss_difference": round(diff, 4),
            "difference_stderr": round(noise, 4),
            "within_noise": abs(diff) <= 2 * noise,
            "throughput_ratio_genlab_over_transformers": round(tps["genlab"] / tps["transformers"], 2),
        },
        "generation": gen,
    }
    out = args.out or (None if args.quick else RESULTS)
    t = results["training"]
    print(
        json.dumps(
            {
                "val_loss": {k: v["val_loss"] for k, v in last.items()},
                "within_noise": t["within_noise"],
                "train_ratio": t["throughput_ratio_genlab_over_transformers"],
                "generation_ratio": gen["ratio_genlab_over_transformers"],
                "same_tokens": gen["same_tokens"],
            }
        )
    )
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"written to {out}")


if __name__ == "__main__":
    main()
