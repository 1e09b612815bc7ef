"""Decoding speed: genlab's `generate` against `transformers`' `generate` on the same weights.

For each model — the char GPT and the BPE GPT (GPT-2 layout, `genlab/recipes/char-gpt-kjv.yaml` and
`genlab/recipes/bpe-gpt-bible.yaml`), the char GPT in the Llama layout (rotary, RMSNorm, SwiGLU) and the modern
char GPT (`genlab/recipes/char-gpt-kjv-modern.yaml`, which no `transformers` class holds: genlab alone) — greedy
and sampled decoding (temperature 1) of `--new-tokens` tokens after a 16-token prompt, at batch 1 and 8,
both sides with a KV cache, interleaved repeats, median seconds. Speed does not depend on the weights'
values, so the models are freshly initialised; the GPT-2 and Llama models get a context that holds the
prompt and every new token (`transformers` cannot slide a position table), the modern one keeps its 64
tokens and decodes past them with its rolling cache. Greedy decoding must give the same tokens on both
sides (checked); sampled decoding draws from different random streams, so only its time is compared.

    python benchmarks/generation_benchmark.py                         # writes results/generation/
    python benchmarks/generation_benchmark.py --new-tokens 32 --repeats 1 --out /tmp/gen   # smoke test
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from genlab.interop.hf import save_gpt2, save_llama
from genlab.models.generation import generate
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tasks import load_recipe
from genlab.tasks.lm.training import model_config

PROMPT_TOKENS = 16
CHAR_VOCAB = 80  # about the KJV's characters; speed hardly depends on it
LLAMA = {"positions": "rotary", "norm": "rmsnorm", "activation": "swiglu"}


def configs(new_tokens: int) -> dict[str, tuple[TransformerConfig, str | None]]:
    """name -> (config, the transformers layout it is compared in, or None for genlab alone)."""
    context = PROMPT_TOKENS + new_tokens
    char = model_config(load_recipe("char-gpt-kjv"), CHAR_VOCAB)
    bpe_recipe = load_recipe("bpe-gpt-bible")
    bpe = model_config(bpe_recipe, bpe_recipe.data.vocab_size)
    return {
        "char-gpt (GPT-2 layout)": (dataclasses.replace(char, block_size=context), "gpt2"),
        "bpe-gpt (GPT-2 layout)": (dataclasses.replace(bpe, block_size=context), "gpt2"),
        "char-gpt (Llama layout)": (dataclasses.replace(char, block_size=context, **LLAMA), "llama"),
        "char-gpt-kjv-modern (rolling cache)": (model_config(load_recipe("char-gpt-kjv-modern"), CHAR_VOCAB), None),
    }


def hf_twin(model: Transformer, layout: str, folder: Path) -> torch.nn.Module:
    from transformers import GPT2LMHeadModel, LlamaForCausalLM

    if layout == "gpt2":
        save_gpt2(model, folder)
        return GPT2LMHeadModel.from_pretrained(str(folder)).eval()
    save_llama(model, folder)
    return LlamaForCausalLM.from_pretrained(str(folder)).eval()


def hf_generate(model: torch.nn.Module, prompt: torch.Tensor, new_tokens: int, sample: bool) -> torch.Tensor:
    with torch.no_grad():
        return model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=sample,
            temperature=1.0 if sample else None,
            top_k=0 if sample else None,
            top_p=1.0 if sample else None,
            use_cache=True,
            pad_token_id=0,
        )


def measure(
    config: TransformerConfig, layout: str | None, batch: int, sample: bool, new_tokens: int, repeats: int, folder: Path
) -> dict:
    torch.manual_seed(1)
    ours = Transformer(config).eval()
    theirs = hf_twin(ours, layout, folder) if layout else None
    prompt = torch.randint(5, config.vocab_size, (batch, PROMPT_TOKENS))
    temperature = 1.0 if sample else 0.0
    times: dict[str, list[float]] = {"genlab": [], **({"transformers": []} if theirs else {})}
    outputs = {}
    for i in range(repeats + 1):  # the first repeat warms up both sides and is not timed
        start = time.perf_counter()
        outputs["genlab"] = generate(ours, prompt, new_tokens, temperature=temperature, seed=i)
        if i:
            times["genlab"].append(time.perf_counter() - start)
        if theirs is not None:
            start = time.perf_counter()
            outputs["transformers"] = hf_generate(theirs, prompt, new_tokens, sample)
            if i:
                times["transformers"].append(time.perf_counter() - start)
    median = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "batch": batch,
        "decoding": "sampled" if sample else "greedy",
        "tokens_per_second": {k: round(batch * new_tokens / v, 1) for k, v in median.items()},
        "ms_per_step": {k: round(1000 * v / new_tokens, 3) for k, v in median.items()},
    }
    if theirs is not None:
        result["ratio_genlab_over_transformers"] = round(median["transformers"] / median["genlab"], 2)
        if not sample:
            result["same_tokens"] = bool(torch.equal(outputs["genlab"], outputs["transformers"]))
    return result


def plot(results: dict, path: Path) -> None:
    """Tokens/s of both sides for every row that has a transformers twin, greedy and sampled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["rows"] if "transformers" in r["tokens_per_second"]]
    fig, ax = plt.subplots(figsize=(10, 5.5))
    width = 0.4
    for i, r in enumerate(rows):
        t = r["tokens_per_second"]
        ax.bar(i - width / 2, t["genlab"], width, color="tab:orange", label="genlab" if i == 0 else None)
        ax.bar(i + width / 2, t["transformers"], width, color="tab:blue", label="transformers" if i == 0 else None)
        ax.text(i, t["genlab"], f"{r['ratio_genlab_over_transformers']:.2f}×", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(
        range(len(rows)),
        [f"{r['model'].replace(' layout)', ')')}\nbatch {r['batch']}, {r['decoding']}" for r in rows],
        fontsize=7,
        rotation=35,
        ha="right",
    )
    ax.set_yscale("log")
    ax.set_ylabel("tokens per second (log scale)")
    ax.set_title(
        f"generate(): {results['new_tokens']} new tokens, KV cache on both sides, "
        f"{results['machine']['threads']} threads"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "generation"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (config, layout) in configs(args.new_tokens).items():
            for batch in args.batches:
                for sample in (False, True):
                    row = {
                        "model": name,
                        "context": config.block_size,
                        **measure(config, layout, batch, sample, args.new_tokens, args.repeats, Path(tmp) / name),
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    target = [
        r for r in rows if r["model"] == "char-gpt (GPT-2 layout)" and r["batch"] == 1 and r["decoding"] == "greedy"
    ]
    results = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "new_tokens": args.new_tokens,
        "prompt_tokens": PROMPT_TOKENS,
        "repeats": args.repeats,
        "target": {
            "what": "char GPT, GPT-2 layout, batch 1, greedy: >= 3x transformers' generate",
            "ratio": target[0]["ratio_genlab_over_transformers"] if target else None,
        },
        "rows": rows,
    }
    (out / "generation_benchmark.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, out / "generation_benchmark.png")
    print(f"written to {out / 'generation_benchmark.json'}")


if __name__ == "__main__":
    main()
