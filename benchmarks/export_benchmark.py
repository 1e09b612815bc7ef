"""`genlab export` on trained runs: export time, file size, agreement with PyTorch, and onnxruntime's speed
against PyTorch's on the same inputs.

For each run: `genlab.load(run).export(...)` (timed: tracing, ONNX optimisation, the runtime check), then
the run's own example inputs at `--batch` (a language model: `--sequences` sequences of its full context) through
the PyTorch module (`torch.no_grad`) and through an onnxruntime session, both on `--threads` threads,
interleaved `--repeats` times; median seconds, and the largest |onnxruntime - PyTorch| on those inputs.

    python benchmarks/export_benchmark.py RUN [RUN ...]                 # writes results/export/
    python benchmarks/export_benchmark.py RUN --repeats 2 --out /tmp/x  # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

import genlab

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "export"


def measure(run: str, batch: int, sequences: int, threads: int, repeats: int, folder: Path) -> dict:
    handle = genlab.load(run)
    started = time.perf_counter()
    described = handle.export(folder / f"{Path(run).name}.onnx")
    export_seconds = time.perf_counter() - started
    graph = handle.export_graph()
    inputs = graph.example(batch)
    if "input_ids" in inputs and "attention_mask" not in inputs:  # a language model: its whole context
        context = handle.model.config.block_size
        inputs = {
            "input_ids": torch.randint(
                0, handle.model.config.vocab_size, (sequences, context), generator=torch.Generator().manual_seed(0)
            )
        }
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = onnxruntime.InferenceSession(
        str(folder / f"{Path(run).name}.onnx"), options, providers=["CPUExecutionProvider"]
    )
    feed = {key: t.numpy() for key, t in inputs.items()}
    module = graph.module.eval()
    torch.set_num_threads(threads)

    def torch_call() -> np.ndarray:
        with torch.no_grad():
            return module(*inputs.values()).numpy()

    def ort_call() -> np.ndarray:
        return session.run(None, feed)[0]

    torch_out, ort_out = torch_call(), ort_call()  # warm-up, and the agreement at this batch
    times: dict[str, list[float]] = {"torch": [], "onnxruntime": []}
    for _ in range(repeats):
        for name, call in (("torch", torch_call), ("onnxruntime", ort_call)):
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    seconds = {name: statistics.median(values) for name, values in times.items()}
    return {
        "run": run,
        "task": handle.task,
        "export_seconds": round(export_seconds, 1),
        "bytes": described["bytes"],
        "inputs": {key: list(t.shape) for key, t in inputs.items()},
        "max_abs_difference": float(np.abs(torch_out - ort_out).max()),
        "seconds": seconds,
        "onnxruntime_speedup": seconds["torch"] / seconds["onnxruntime"],
    }


def markdown(results: dict) -> str:
    lines = [
        f"# `genlab export`: ONNX graphs against PyTorch ({results['machine']}, {results['threads']} threads)",
        "",
        f"Made by `{results['command']}`; median of {results['repeats']} interleaved calls each.",
        "",
        "| run | task | inputs | export (s) | size (MB) | max \\|ORT − PyTorch\\| | PyTorch (ms) | "
        "onnxruntime (ms) | ORT speed-up |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["runs"]:
        shapes = ", ".join(f"{k} {'×'.join(map(str, v))}" for k, v in r["inputs"].items())
        lines.append(
            f"| {Path(r['run']).name} | {r['task']} | {shapes} | {r['export_seconds']:.1f} | "
            f"{r['bytes'] / 1e6:.1f} | {r['max_abs_difference']:.1e} | {1e3 * r['seconds']['torch']:.1f} | "
            f"{1e3 * r['seconds']['onnxruntime']:.1f} | {r['onnxruntime_speedup']:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--batch", type=int, default=64, help="examples per call")
    parser.add_argument("--sequences", type=int, default=8, help="a language model's sequences per call (full context)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(run, args.batch, args.sequences, args.threads, args.repeats, Path(folder)) for run in args.runs]
    results = {
        "machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
        "threads": args.threads,
        "repeats": args.repeats,
        "batch": args.batch,
        "command": "python benchmarks/export_benchmark.py " + " ".join(args.runs),
        "runs": rows,
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
    }
    (out / "export_benchmark.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "export_benchmark.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
