"""The naive per-request reference for benchmarks/serve_benchmark.py: a minimal FastAPI app that answers
OpenAI-shaped completions with `transformers`' `model.generate(...)` on a run's Hugging Face export
(RUN/model), one request at a time.

- One endpoint, POST /v1/completions, taking the request shape of `genlab serve` (model, prompt,
  max_tokens, temperature, top_k, top_p, seed; `n` must be 1) and answering non-streaming JSON:
  `choices[0].text` and `usage.completion_tokens`. `stream: true` is refused (400): this is the
  reference without streaming, so its time to first byte is its full latency.
- The endpoint is a plain (sync) function, which FastAPI runs in its thread pool; a `threading.Lock`
  around seeding and `model.generate` makes generation strictly one request at a time (no batching, no
  interleaving), while the event loop keeps accepting connections (waiting requests queue on the lock).
- Every request generates exactly `max_tokens` new tokens (`min_new_tokens` = `max_new_tokens`), with
  `do_sample=True` (or greedy at temperature 0), `top_k=0` unless asked (transformers' default of 50 would
  otherwise apply) and `pad_token_id` set. A request's seed seeds torch's global generator (under the lock).
- Threads: torch's default, unless OMP_NUM_THREADS or `--threads` says otherwise; GET /health reports
  `torch.get_num_threads()`.

    python benchmarks/serve_hf_baseline.py RUN --port 8100 [--threads N]
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field


class CompletionRequest(BaseModel):
    model: str = ""
    prompt: str = Field(min_length=1)
    max_tokens: int = Field(16, ge=1, le=2048)
    temperature: float = Field(1.0, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=1)
    seed: int | None = Field(None, ge=0)
    n: int = Field(1, ge=1, le=1)
    stream: bool = False


def create_app(model_dir: Path, name: str) -> FastAPI:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    context = model.config.n_positions
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    lock = threading.Lock()
    app = FastAPI(title="naive transformers baseline")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "models": [name],
            "torch_threads": torch.get_num_threads(),
            "torch_version": torch.__version__,
            "context": context,
        }

    @app.post("/v1/completions")
    def completions(body: CompletionRequest) -> dict[str, Any]:
        started = time.perf_counter()
        if body.stream:
            raise HTTPException(400, "this baseline does not stream")
        ids = tokenizer(body.prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        prompt_tokens = ids.shape[1]
        if prompt_tokens < 1 or prompt_tokens + body.max_tokens > context:
            raise HTTPException(
                422, f"prompt ({prompt_tokens}) + max_tokens ({body.max_tokens}) exceeds the {context}-token context"
            )
        sampling: dict[str, Any] = {"do_sample": body.temperature > 0}
        if body.temperature > 0:
            sampling |= {"temperature": body.temperature, "top_k": body.top_k or 0, "top_p": body.top_p}
        with lock, torch.inference_mode():
            if body.seed is not None:
                torch.manual_seed(body.seed)
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=body.max_tokens,
                min_new_tokens=body.max_tokens,
                pad_token_id=pad_id,
                **sampling,
            )
        new = out[0, prompt_tokens:].tolist()
        text = tokenizer.decode(new, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": name,
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "length"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(new),
                "total_tokens": prompt_tokens + len(new),
            },
            "genlab": {"seconds": round(time.perf_counter() - started, 6), "flops": 0},
        }

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a genlab LM run folder (its model/ export is served) or a model/ folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    run = Path(args.run).resolve()
    model_dir = run / "model" if (run / "model" / "config.json").is_file() else run
    name = run.name if model_dir != run else run.parent.name

    import uvicorn

    uvicorn.run(create_app(model_dir, name), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
