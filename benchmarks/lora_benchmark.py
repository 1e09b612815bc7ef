"""genlab's LoRA against Hugging Face `peft`'s: training step time on the same model.

One GPT the size of the `bpe-gpt-bible` recipe (vocab 4096, context 256, 4 layers, 4 heads, 192 dims,
tanh GELU as GPT-2's "gelu_new") with seeded random weights. genlab's copy gets `apply_lora`; the same
weights, exported with `save_gpt2` and loaded by `transformers.GPT2LMHeadModel.from_pretrained`, get
`peft.get_peft_model`. Both: rank 8, alpha 16, dropout 0, on all four linear kinds (genlab's
attn.qkv / attn.proj / mlp.fc / mlp.proj = GPT-2's attn.c_attn / attn.c_proj / mlp.c_fc / mlp.c_proj),
with identical, nonzero A and B (genlab's copied into peft's; both store A as (r, in), B as (out, r)).

A training step, the same on both sides: forward on one fixed, seeded batch (16 x 128 tokens), the
causal-LM loss from the logits (`causal_lm_loss`), backward, an AdamW step over the LoRA parameters
only (same lr), zero_grad. After a few warm-up steps (whose losses must agree within 1e-4, checking
that both sides train the same model), R interleaved rounds of N steps per side; the side that goes
first alternates between rounds. Reported: the median over rounds of
peft seconds per step / genlab seconds per step (> 1 means genlab is faster).

The ratio measures the whole step, not LoRA alone: the models compute the same function but not with
the same kernels. Notably transformers' GPT-2 evaluates "gelu_new" as NewGELUActivation (tanh, pow, mul
and add as separate ops, forward and backward), genlab as one F.gelu(approximate="tanh").

    python benchmarks/lora_benchmark.py                   # 5 rounds x 20 steps per side
    python benchmarks/lora_benchmark.py --tiny --out x.json   # smoke test: 2 layers, 32 dims, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from genlab.interop.hf import save_gpt2
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.peft.lora import LoraConfig, apply_lora, lora_layers, trainable_parameter_count
from genlab.tasks.lm.process import causal_lm_loss

RESULTS = Path(__file__).resolve().parent / "results" / "lora_benchmark.json"
# genlab's linear layer in each block -> the GPT-2 module holding the same weight.
GPT2_NAMES = {"attn.qkv": "attn.c_attn", "attn.proj": "attn.c_proj", "mlp.fc": "mlp.c_fc", "mlp.proj": "mlp.c_proj"}
LOSS_TOLERANCE = 1e-4


def build(model_cfg: TransformerConfig, rank: int, alpha: float, folder: Path, seed: int):
    """(genlab model, peft model): same base weights, same nonzero LoRA A and B, both in train mode."""
    import peft
    from transformers import GPT2LMHeadModel

    torch.manual_seed(seed)
    ours = Transformer(model_cfg)
    save_gpt2(ours, folder)
    base = GPT2LMHeadModel.from_pretrained(str(folder))
    # GPT-2's Conv1D holds its weight as (in, out); fan_in_fan_out tells peft so. "c_proj" matches both
    # attn.c_proj and mlp.c_proj, as genlab's "proj" targets below are two entries.
    theirs = peft.get_peft_model(
        base,
        peft.LoraConfig(
            r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True
        ),
    )
    apply_lora(ours, LoraConfig(rank=rank, alpha=alpha, dropout=0.0, target_modules=list(GPT2_NAMES)))

    blocks = theirs.base_model.model.transformer.h
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # B nonzero: the LoRA path then matters in the forward and in both gradients
        for name, layer in lora_layers(ours).items():
            _, i, kind = name.split(".", 2)  # blocks.<i>.<kind>
            ref = blocks[int(i)].get_submodule(GPT2_NAMES[kind])
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=gen) * 0.02)
            ref.lora_A["default"].weight.copy_(layer.lora_A)
            ref.lora_B["default"].weight.copy_(layer.lora_B)
    n_ours = trainable_parameter_count(ours)
    n_theirs = sum(p.numel() for p in theirs.parameters() if p.requires_grad)
    if n_ours != n_theirs:
        raise RuntimeError(f"trainable parameters differ: genlab {n_ours}, peft {n_theirs}")
    return ours.train(), theirs.train()


class Side:
    """One model, its AdamW over the trainable (LoRA) parameters, and the fixed batch."""

    def __init__(self, model: torch.nn.Module, batch: torch.Tensor, lr: float, hf: bool):
        self.model, self.batch, self.hf = model, batch, hf
        self.opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)

    def step(self) -> float:
        logits = self.model(input_ids=self.batch).logits if self.hf else self.model(self.batch).logits
        loss = causal_lm_loss(logits, self.batch)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss.item()

    def timed(self, steps: int) -> float:
        """Seconds per step over `steps` steps."""
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per side per round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per side first (losses compared)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=128, help="tokens per sequence")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=16.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, i.e. OMP_NUM_THREADS)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--note", default="", help="free text stored in the results (e.g. 'shared machine')")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="smoke test: 2 layers, 32 dims, batch 2 x 16, 2 rounds x 2 steps, 2 warm-up steps; writes only to --out",
    )
    parser.add_argument("--out", type=Path, help=f"results JSON (default {RESULTS.name}; --tiny writes only to --out)")
    args = parser.parse_args()
    model_cfg = TransformerConfig(
        vocab_size=4096, block_size=256, n_layer=4, n_head=4, n_embd=192, dropout=0.0, activation="gelu_new"
    )
    if args.tiny:
        model_cfg = TransformerConfig(
            vocab_size=256, block_size=32, n_layer=2, n_head=4, n_embd=32, dropout=0.0, activation="gelu_new"
        )
        args.batch, args.seq, args.rounds, args.steps, args.warmup = 2, 16, 2, 2, 2
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.warmup < 1:
        parser.error("--warmup must be at least 1 (the first steps check that both sides agree)")
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = build(model_cfg, args.rank, args.alpha, Path(tmp), args.seed)
    gen = torch.Generator().manual_seed(args.seed + 2)
    batch = torch.randint(model_cfg.vocab_size, (args.batch, args.seq), generator=gen)  # (B, T), fixed
    sides = {"genlab": Side(ours, batch, args.lr, hf=False), "peft": Side(theirs, batch, args.lr, hf=True)}

    # Warm-up, step by step on both sides: identical models, data and optimiser give identical losses.
    losses = {name: [] for name in sides}
    for _ in range(args.warmup):
        for name, side in sides.items():
            losses[name].append(side.step())
    diffs = [abs(a - b) for a, b in zip(losses["genlab"], losses["peft"])]
    max_diff = max(diffs)

    per_round = []
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))  # alternate who goes first
        secs = {name: sides[name].timed(args.steps) for name in order}
        per_round.append(
            {
                "first": order[0],
                "genlab_s_per_step": round(secs["genlab"], 5),
                "peft_s_per_step": round(secs["peft"], 5),
                "ratio_peft_over_genlab": round(secs["peft"] / secs["genlab"], 3),
            }
        )
        print(
            f"round {r + 1}: genlab {secs['genlab']:.4f} s/step, peft {secs['peft']:.4f} s/step, "
            f"ratio {secs['peft'] / secs['genlab']:.3f}",
            flush=True,
        )
    ratio = statistics.median(p["ratio_peft_over_genlab"] for p in per_round)
    median_s = {name: statistics.median(p[f"{name}_s_per_step"] for p in per_round) for name in sides}

    import peft
    import transformers

    results = {
        "command": "python benchmarks/lora_benchmark.py " + " ".join(sys.argv[1:]),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "peft": peft.__version__,
            "transformers": transformers.__version__,
            "threads": torch.get_num_threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "load_average_1min": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
            "note": args.note,
        },
        "model": {
            k: getattr(model_cfg, k) for k in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "activation")
        },
        "lora": {
            "rank": args.rank,
            "alpha": args.alpha,
            "dropout": 0.0,
            "targets_genlab": list(GPT2_NAMES),
            "targets_peft": ["c_attn", "c_proj", "c_fc"],
            "trainable_parameters": trainable_parameter_count(ours),
        },
        "step": {
            "batch": args.batch,
            "seq": args.seq,
            "optimizer": "AdamW over LoRA parameters",
            "lr": args.lr,
            "loss": "causal_lm_loss(logits, ids) on both sides",
        },
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "warmup_steps": args.warmup,
        "warmup_losses": {k: [round(v, 6) for v in vs] for k, vs in losses.items()},
        "warmup_loss_max_abs_diff": max_diff,
        "losses_match": max_diff <= LOSS_TOLERANCE,
        "loss_tolerance": LOSS_TOLERANCE,
        "per_round": per_round,
        "median_s_per_step": {k: round(v, 5) for k, v in median_s.items()},
        "median_ratio_peft_over_genlab": ratio,
        "genlab_at_least_as_fast": ratio >= 1.0,
    }
    print(
        f"LoRA step: genlab {median_s['genlab']:.4f} s, peft {median_s['peft']:.4f} s (medians); "
        f"median per-round ratio peft/genlab {ratio:.3f} ({'genlab faster' if ratio >= 1 else 'peft faster'}); "
        f"warm-up loss max diff {max_diff:.2e}; threads {torch.get_num_threads()}"
    )
    out = args.out or (None if args.tiny else RESULTS)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"written to {out}")
    if max_diff > LOSS_TOLERANCE:
        sys.exit(f"the two sides' warm-up losses differ by {max_diff:.2e} (> {LOSS_TOLERANCE}): not the same model")


if __name__ == "__main__":
    main()
