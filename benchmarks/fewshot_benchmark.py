"""Zero-shot and few-shot classification of the fortunes categories (issue 12), all methods on one test split.

Few-shot: k in {1, 2, 4, 8, 16, 32} examples per class, each over --seeds seeds of which examples and in which
order (LabelledData.per_class_examples), by (a) frozen MiniLM + logistic regression, (b) SetFit-style
contrastive fine-tune + the same head, (c) LoRA (the finetune task, genlab/recipes/fortunes-lora.yaml with
data.per_class), (d) in-context k-shot prompts to a genlab GPT (the `in-context` protocol), (e) TF-IDF +
logistic regression; (a) and (e) also on all the training data. Zero-shot: MiniLM similarity to label
descriptions, and label log-likelihood under the GPT (acc, acc_norm, with and without contextual calibration),
beside the plurality-class baseline. Each point records its cost: seconds, and FLOPs where torch's counter
sees them (MiniLM and GPT forward/backward passes; TF-IDF and scikit-learn fits are not counted).

Resumable: finished points are kept in fewshot.json and skipped on the next start; cheap methods run first.

    GENLAB_THREADS=1 nice -n 5 python benchmarks/fewshot_benchmark.py           # all methods
    python benchmarks/fewshot_benchmark.py --methods tfidf,frozen --ks 1,8       # a part
    python benchmarks/fewshot_benchmark.py --dry-run --out /tmp/fewshot           # seconds: tiny settings
"""

from __future__ import annotations

import argparse
import copy
import fcntl
import json
import math
import shutil
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from genlab import api
from genlab.core.threads import configure_threads
from genlab.data.labelled import load_labelled_data
from genlab.data.text import load_fortunes
from genlab.evaluation.fewshot import ContrastiveConfig, contrastive_finetune, in_context, logistic_head, tfidf_logreg
from genlab.evaluation.sentence import SentenceEncoder
from genlab.evaluation.text_metrics import accuracy, macro_f1
from genlab.evaluation.zeroshot import embedding_zero_shot, load_prompts, plurality_baseline, zero_shot
from genlab.io.files import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "fewshot"
FULL_FINETUNED_F1 = 0.664  # fortunes-full / fortunes-lora on all the data (docs/finetune.md)
METHODS = ("tfidf", "frozen", "setfit", "in-context", "lora")  # cheap first
NAMES = {
    "tfidf": "(e) TF-IDF + LR",
    "frozen": "(a) frozen MiniLM + LR",
    "setfit": "(b) SetFit-style + LR",
    "lora": "(c) LoRA fine-tune",
    "in-context": "(d) in-context GPT",
}
MAX_TOKENS = 40  # as genlab/recipes/fortunes-*.yaml


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args, self.path = args, Path(args.out) / "fewshot.json"
        self.results = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.results.setdefault("points", {})
        self.data = load_labelled_data("fortunes", "classify")
        self.test = self.data.test_examples(args.test_limit)
        self.truth = [y for _, y in self.test]
        self._encoder: SentenceEncoder | None = None
        self._vectors: dict[str, tuple[torch.Tensor, float, float]] = {}  # text -> (vector, flops, seconds)

    def save(self) -> None:
        """Merge into the file under a lock: several benchmark processes (other --methods) may share it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        Path(self.args.runs_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(self.args.runs_dir) / "fewshot.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            stored = json.loads(self.path.read_text()) if self.path.is_file() else {}
            for key, value in stored.items():
                if isinstance(value, dict) and isinstance(self.results.get(key), dict):
                    self.results[key] = {**value, **self.results[key]}
                else:
                    self.results.setdefault(key, value)
            atomic_write_text(self.path, json.dumps(self.results, indent=1, sort_keys=True))

    def done(self, key: str) -> bool:
        """Finished here, or by another benchmark process since this one started."""
        stored = json.loads(self.path.read_text())["points"] if self.path.is_file() else {}
        return key in self.results["points"] or key in stored

    def record(self, key: str, predicted: list[str], **cost) -> None:
        self.results["points"][key] = {
            "macro_f1": macro_f1(self.truth, predicted),
            "accuracy": accuracy(self.truth, predicted),
            **cost,
        }
        self.save()
        print(f"{key}: macro-F1 {self.results['points'][key]['macro_f1']:.3f}", flush=True)

    @property
    def encoder(self) -> SentenceEncoder:
        if self._encoder is None:
            self._encoder = SentenceEncoder.minilm(MAX_TOKENS)
        return self._encoder

    def frozen(self, texts: list[str]) -> tuple[torch.Tensor, float, float]:
        """Frozen MiniLM vectors (N, C) of `texts`, each text embedded once per benchmark process;
        -> the vectors and what embedding them cost (FLOPs, seconds)."""
        new = sorted({t for t in texts if t not in self._vectors})
        if new:
            embedded = self.encoder.embed(new)
            for i, t in enumerate(new):
                self._vectors[t] = (embedded.vectors[i], embedded.flops[i], embedded.seconds[i])
        rows = [self._vectors[t] for t in texts]
        return torch.stack([r[0] for r in rows]), sum(r[1] for r in rows), sum(r[2] for r in rows)

    def samples(self, k: int):
        for seed in range(self.args.seeds):
            yield seed, self.data.per_class_examples(k, seed)


def run_zero_shot(bench: Bench, lm_run: Path | None) -> None:
    """MiniLM similarity to the label descriptions, or (with `lm_run`) the GPT's label log-likelihoods."""
    zs = bench.results.setdefault("zero_shot", {})
    zs["plurality"] = plurality_baseline(bench.data, bench.test)
    prompts = load_prompts("fortunes")
    if lm_run is None and "embedding" not in zs:
        began = time.perf_counter()
        vectors, flops, _ = bench.frozen([t for t, _ in bench.test])
        predicted = embedding_zero_shot(bench.encoder, [t for t, _ in bench.test], bench.data.labels, prompts, vectors)
        zs["embedding"] = {
            "macro_f1": macro_f1(bench.truth, predicted),
            "accuracy": accuracy(bench.truth, predicted),
            "seconds": time.perf_counter() - began,
            "flops": flops,
        }
        bench.save()
    if lm_run is not None and "lm" not in zs:
        handle = api.load(lm_run)
        with FlopCounterMode(display=False) as counter:
            scored = zero_shot(handle, limit=bench.args.test_limit)
        zs["lm"] = {**scored, "run": str(lm_run), "flops": float(counter.get_total_flops())}
        bench.save()


def run_tfidf(bench: Bench, k: int) -> None:
    texts = [t for t, _ in bench.test]
    for seed, examples in bench.samples(k):
        key = f"tfidf/k{k}/s{seed}"
        if not bench.done(key):
            began = time.perf_counter()
            predicted = tfidf_logreg(examples, texts, seed)
            bench.record(key, predicted, seconds=time.perf_counter() - began, flops=None)


def run_frozen(bench: Bench, k: int) -> None:
    test_vectors, test_flops, test_seconds = bench.frozen([t for t, _ in bench.test])
    for seed, examples in bench.samples(k):
        key = f"frozen/k{k}/s{seed}"
        if not bench.done(key):
            vectors, flops, seconds = bench.frozen([t for t, _ in examples])
            began = time.perf_counter()
            predicted = logistic_head(vectors, [y for _, y in examples], test_vectors, seed)
            bench.record(
                key, predicted, seconds=seconds + test_seconds + time.perf_counter() - began, flops=flops + test_flops
            )


def run_setfit(bench: Bench, k: int) -> None:
    for seed, examples in bench.samples(k):
        key = f"setfit/k{k}/s{seed}"
        if bench.done(key):
            continue
        encoder = copy.deepcopy(bench.encoder)
        config = ContrastiveConfig(max_pairs=bench.args.setfit_pairs, seed=seed)
        trained = contrastive_finetune(encoder, examples, config)
        train_embedded = encoder.embed([t for t, _ in examples])
        test_embedded = encoder.embed([t for t, _ in bench.test])
        began = time.perf_counter()
        predicted = logistic_head(train_embedded.vectors, [y for _, y in examples], test_embedded.vectors, seed)
        bench.record(
            key,
            predicted,
            pairs=trained["pairs"],
            steps=trained["steps"],
            seconds=trained["seconds"]
            + sum(train_embedded.seconds)
            + sum(test_embedded.seconds)
            + time.perf_counter()
            - began,
            flops=trained["flops"] + sum(train_embedded.flops) + sum(test_embedded.flops),
        )


def run_in_context(bench: Bench, k: int, lm_run: Path) -> None:
    key = f"in-context/k{k}"
    if any(bench.done(f"{key}/s{s}") for s in range(bench.args.seeds)):
        return
    handle = api.load(lm_run)
    began = time.perf_counter()
    with FlopCounterMode(display=False) as counter:
        scored = in_context(handle, k=k, seeds=bench.args.seeds, limit=bench.args.test_limit)
    seconds, flops = (time.perf_counter() - began) / bench.args.seeds, counter.get_total_flops() / bench.args.seeds
    for seed in range(bench.args.seeds):
        bench.results["points"][f"{key}/s{seed}"] = {
            "macro_f1": scored["macro_f1"]["acc_calibrated"]["seeds"][seed],
            "accuracy": scored["acc_calibrated"]["seeds"][seed],
            "seconds": seconds,
            "flops": flops,
            "in_prompt": scored["in_prompt"][seed],
            "context": scored["context"],
            "uncalibrated_macro_f1": scored["macro_f1"]["acc"]["seeds"][seed],
            "all_rules_macro_f1": {rule: v["seeds"][seed] for rule, v in scored["macro_f1"].items()},
        }
    bench.save()
    print(
        f"{key}: calibrated macro-F1 {scored['macro_f1']['acc_calibrated']['mean']:.3f}, "
        f"examples in the prompt {scored['in_prompt']}",
        flush=True,
    )


def run_lora(bench: Bench, k: int) -> None:
    """The finetune task on k examples per class: about `lora_steps` steps of batch 8, however small k is."""
    for seed, _ in bench.samples(k):
        key = f"lora/k{k}/s{seed}"
        if bench.done(key):
            continue
        steps_per_epoch = 10 * k // 8
        epochs = max(1, math.ceil(bench.args.lora_steps / steps_per_epoch))
        run = Path(bench.args.runs_dir) / f"lora-k{k}-s{seed}"
        # validation and checkpoints at the end only: at k = 1 an epoch is one step
        overrides = [
            f"data.per_class={k}",
            f"data.subset_seed={seed}",
            "data.batch_size=8",
            f"train.epochs={epochs}",
            f"train.sample_every={epochs}",
            f"train.checkpoint_every={epochs}",
            "train.warmup_iters=5",
            "train.progress=false",
            f"seed={seed}",
            f"data.eval_limit={bench.args.test_limit}",
        ]
        if not (run / "report.json").is_file() or "cost" not in json.loads((run / "report.json").read_text()):
            shutil.rmtree(run, ignore_errors=True)  # an interrupted run of this benchmark: start it again
            api.fit("fortunes-lora", run, overrides)
        handle = api.load(run)
        tested = handle.report.get("test") or handle.evaluate()
        cost = handle.report["cost"]
        bench.results["points"][key] = {
            "macro_f1": tested["macro_f1"],
            "accuracy": tested["accuracy"],
            "seconds": cost["wall_seconds"] + tested["eval_seconds"],
            "flops": cost["train_flops"],
            "steps": cost["steps"],
            "run": str(run),
            "flops_note": "training FLOPs from the run's ledger (test pass not counted)",
        }
        bench.save()
        print(f"{key}: macro-F1 {tested['macro_f1']:.3f}", flush=True)


def run_full_data(bench: Bench) -> None:
    full = bench.results.setdefault(
        "full_data", {"finetuned_minilm": {"macro_f1": FULL_FINETUNED_F1, "source": "docs/finetune.md"}}
    )
    train = bench.data.training_examples(200 if bench.args.dry_run else 0, seed=0)
    texts = [t for t, _ in bench.test]
    if "tfidf" not in full:
        began = time.perf_counter()
        predicted = tfidf_logreg(train, texts)
        full["tfidf"] = {
            "macro_f1": macro_f1(bench.truth, predicted),
            "examples": len(train),
            "seconds": time.perf_counter() - began,
        }
        bench.save()
    if "frozen" not in full:
        vectors, flops, seconds = bench.frozen([t for t, _ in train])
        test_vectors, test_flops, test_seconds = bench.frozen(texts)
        predicted = logistic_head(vectors, [y for _, y in train], test_vectors)
        full["frozen"] = {
            "macro_f1": macro_f1(bench.truth, predicted),
            "examples": len(train),
            "seconds": seconds + test_seconds,
            "flops": flops + test_flops,
        }
        bench.save()


def summarise(bench: Bench) -> dict:
    table: dict = {}
    for key, point in bench.results["points"].items():
        method, k, _ = key.split("/")
        table.setdefault(method, {}).setdefault(k, []).append(point)
    summary = {}
    for method, by_k in table.items():
        summary[method] = {}
        for k, points in sorted(by_k.items(), key=lambda kv: int(kv[0][1:])):
            f1 = [p["macro_f1"] for p in points]
            flops = [p["flops"] for p in points if p.get("flops") is not None]
            summary[method][k] = {
                "macro_f1_mean": statistics.fmean(f1),
                "macro_f1_sd": statistics.stdev(f1) if len(f1) > 1 else 0.0,
                "seeds": len(f1),
                "seconds_mean": statistics.fmean(p["seconds"] for p in points),
                "flops_mean": statistics.fmean(flops) if flops else None,
            }
    bench.results["summary"] = summary
    targets = {}
    setfit8, tfidf8 = summary.get("setfit", {}).get("k8"), summary.get("tfidf", {}).get("k8")
    if setfit8 and tfidf8:
        margin = setfit8["macro_f1_mean"] - tfidf8["macro_f1_mean"]
        share = setfit8["macro_f1_mean"] / FULL_FINETUNED_F1
        targets["setfit_k8_minus_tfidf_k8"] = {"value": margin, "target": ">= 0.15", "met": margin >= 0.15}
        targets["setfit_k8_share_of_full_finetune"] = {"value": share, "target": ">= 0.60", "met": share >= 0.60}
    zs = bench.results.get("zero_shot", {})
    candidates = {"embedding": zs.get("embedding", {}).get("macro_f1")}
    if "lm" in zs:
        candidates.update({f"lm {rule}": f1 for rule, f1 in zs["lm"]["macro_f1"].items()})
    candidates = {name: f1 for name, f1 in candidates.items() if f1 is not None}
    if candidates and "plurality" in zs:
        best = max(candidates, key=candidates.get)
        targets["best_zero_shot_beats_plurality"] = {
            "best": best,
            "macro_f1": candidates[best],
            "plurality_macro_f1": zs["plurality"]["macro_f1"],
            "met": candidates[best] > zs["plurality"]["macro_f1"],
        }
    bench.results["targets"] = targets
    bench.save()
    return summary


def markdown(summary: dict) -> str:
    """The learning-curve table: macro-F1 mean ± sd (seeds) per method and k, then the mean cost per point."""
    ks = sorted({k for by_k in summary.values() for k in by_k}, key=lambda k: int(k[1:]))
    lines = ["| method | " + " | ".join(f"k = {k[1:]}" for k in ks) + " |", "|---" * (len(ks) + 1) + "|"]
    for method in METHODS:
        if method in summary:
            cells = [summary[method].get(k) for k in ks]
            lines.append(
                f"| {NAMES[method]} | "
                + " | ".join(
                    f"{c['macro_f1_mean']:.3f} ± {c['macro_f1_sd']:.3f} ({c['seeds']})" if c else "—" for c in cells
                )
                + " |"
            )
    lines += [
        "",
        "| method, cost per point | " + " | ".join(f"k = {k[1:]}" for k in ks) + " |",
        "|---" * (len(ks) + 1) + "|",
    ]
    for method in METHODS:
        if method in summary:
            cells = [summary[method].get(k) for k in ks]
            lines.append(
                f"| {NAMES[method]} | "
                + " | ".join(
                    (f"{c['seconds_mean']:.0f} s" + (f", {c['flops_mean']:.2g} FLOP" if c["flops_mean"] else ""))
                    if c
                    else "—"
                    for c in cells
                )
                + " |"
            )
    return "\n".join(lines)


def seed_counts(by_k: dict) -> str:
    counts = sorted({point["seeds"] for point in by_k.values()})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"


def plot(bench: Bench, summary: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8.5, 5.5))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    colours = {
        "tfidf": "tab:gray",
        "frozen": "tab:blue",
        "setfit": "tab:green",
        "lora": "tab:red",
        "in-context": "tab:purple",
    }
    for method in METHODS:
        if method not in summary:
            continue
        ks = sorted(summary[method], key=lambda k: int(k[1:]))
        ax.errorbar(
            [int(k[1:]) for k in ks],
            [summary[method][k]["macro_f1_mean"] for k in ks],
            yerr=[summary[method][k]["macro_f1_sd"] for k in ks],
            marker="o",
            capsize=3,
            color=colours[method],
            label=f"{NAMES[method]} ({seed_counts(summary[method])} seeds)",
        )
    full = bench.results.get("full_data", {})
    ax.axhline(
        FULL_FINETUNED_F1, color="black", linestyle="--", label=f"MiniLM fine-tuned, all data ({FULL_FINETUNED_F1})"
    )
    for method, style in (("frozen", ":"), ("tfidf", "-.")):
        if method in full:
            f1, examples = full[method]["macro_f1"], full[method]["examples"]
            ax.axhline(
                f1,
                color=colours[method],
                linestyle=style,
                label=f"{NAMES[method]}, all {examples:,} examples ({f1:.3f})",
            )
    zs = bench.results.get("zero_shot", {})
    if "plurality" in zs:
        ax.axhline(
            zs["plurality"]["macro_f1"],
            color="tab:brown",
            linewidth=0.8,
            label=f"plurality class ({zs['plurality']['macro_f1']:.3f})",
        )
    if "embedding" in zs:
        ax.axhline(
            zs["embedding"]["macro_f1"],
            color="tab:olive",
            linewidth=0.8,
            linestyle=(0, (1, 3)),
            label=f"zero-shot MiniLM similarity ({zs['embedding']['macro_f1']:.3f})",
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks([1, 2, 4, 8, 16, 32], labels=["1", "2", "4", "8", "16", "32"])
    ax.set_xlabel("examples per class (k)")
    ax.set_ylabel(f"macro-F1 on the fortunes test split ({len(bench.test)} quotes, 10 classes)")
    ax.set_ylim(0, 0.75)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("Few-shot learning curves: mean ± sd over seeds of example choice and order")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def lm_corpus_overlap(bench: Bench) -> dict:
    """Were the test quotes in the GPT's training text (genlab/recipes/bpe-gpt-bible.yaml: the Bibles and the
    fortunes corpus, whose `train` split genlab.data.text draws by the same split function as the labelled
    data)? Counts test quotes found whole inside any training quote."""
    trained = {f.text for f in load_fortunes("train")}
    return {
        "test_quotes_in_lm_training_text": sum(any(t in quote for quote in trained) for t, _ in bench.test),
        "test_quotes": len(bench.test),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(RESULTS), help="folder for fewshot.json and fewshot.png")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    parser.add_argument("--ks", default="1,2,4,8,16,32")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--lm", default=str(ROOT / "runs" / "bpe-gpt-bible"), help="a genlab GPT run for (d)")
    parser.add_argument("--runs-dir", default=str(ROOT / "runs" / "fewshot"), help="where the LoRA runs go")
    parser.add_argument("--setfit-pairs", type=int, default=320, help="pairs per SetFit-style fine-tune")
    parser.add_argument("--lora-steps", type=int, default=40, help="about this many LoRA steps per point")
    parser.add_argument("--test-limit", type=int, default=0, help="score this many test quotes (0 = all)")
    parser.add_argument("--dry-run", action="store_true", help="tiny settings, seconds: k 1,2, 2 seeds, 30 quotes")
    args = parser.parse_args()
    if args.dry_run:
        args.ks, args.seeds, args.test_limit, args.setfit_pairs, args.lora_steps = "1,2", 2, 30, 16, 2
    configure_threads()
    bench = Bench(args)
    methods = args.methods.split(",")
    ks = [int(k) for k in args.ks.split(",")]
    lm_run = Path(args.lm) if (Path(args.lm) / "checkpoints" / "last").exists() else None
    if lm_run is None and ("in-context" in methods):
        print(f"no trained GPT at {args.lm}: in-context and LM zero-shot skipped", flush=True)
    bench.results["settings"] = {
        "ks": ks,
        "seeds": args.seeds,
        "test_quotes": len(bench.test),
        "setfit_pairs": args.setfit_pairs,
        "lora_steps": args.lora_steps,
        "max_tokens": MAX_TOKENS,
        "threads": torch.get_num_threads(),
        "lm": str(lm_run) if lm_run else None,
    }
    bench.results["lm_overlap"] = lm_corpus_overlap(bench)  # what genlab/recipes/bpe-gpt-bible.yaml trains on
    if "frozen" in methods:  # the frozen encoder's zero-shot and full-data points, and TF-IDF's beside them
        run_zero_shot(bench, None)
        run_full_data(bench)
    if "in-context" in methods and lm_run is not None:
        run_zero_shot(bench, lm_run)
    for method in METHODS:
        if method not in methods:
            continue
        for k in ks:
            if method == "tfidf":
                run_tfidf(bench, k)
            elif method == "frozen":
                run_frozen(bench, k)
            elif method == "setfit":
                run_setfit(bench, k)
            elif method == "in-context" and lm_run is not None:
                run_in_context(bench, k, lm_run)
            elif method == "lora":
                run_lora(bench, k)
    summary = summarise(bench)
    plot(bench, summary, Path(args.out) / "fewshot.png")
    print(markdown(summary))
    print(json.dumps(bench.results["targets"], indent=1))


if __name__ == "__main__":
    main()
