"""Tiny runs of every kind the server serves, trained in seconds: a char GPT (completions), a conditional
GAN (images), a fine-tuned classifier (classifications), a fine-tuned seq2seq model (completions) and a
spoken-digit GAN (audio)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from genlab import api
from genlab.tasks import TASKS
from genlab.tasks.finetune.tiny import write_tiny_start


def write_tiny_seq2seq(path: Path, sentences: list[str]) -> Path:
    """Copy each sentence with its words reversed: a seq2seq task a tiny model learns a little of."""
    with open(path, "w") as fh:
        for s in sentences:
            fh.write(json.dumps({"source": s, "target": " ".join(reversed(s.split()))}) + "\n")
    return path


def train_tiny_runs(folder: Path) -> dict[str, Path]:
    """name -> run directory (the name is also the served model's name)."""
    runs = {}
    for name in ("lm", "finetune", "audio", "translation"):
        tiny = TASKS[name].tiny(folder / f"{name}-data")
        runs[name] = api.fit(tiny.recipe, folder / name, tiny.overrides)[0]
    gan = TASKS["gan"].tiny(folder / "gan-data")
    runs["gan"] = api.fit(
        "conditional-mlp-mnist", folder / "gan", gan.overrides + ["train.ema_decay=0.0", "train.r1_gamma=0.0"]
    )[0]
    sentences = (folder / "finetune-data" / "corpus.txt").read_text().splitlines()
    start = write_tiny_start(folder / "seq2seq-start", sentences + ["<bos> <eos>"])
    data = write_tiny_seq2seq(folder / "reverse.jsonl", sentences)
    settings = {
        "start": start,
        "data.dataset": data,
        "data.kind": "seq2seq",
        "data.batch_size": 16,
        "data.max_tokens": 48,
        "data.limit": 160,
        "data.eval_limit": 20,
        "method.name": "full",
        "train.epochs": 1,
        "train.lr": 3e-3,
        "train.warmup_iters": 1,
        "train.progress": False,
        "eval.max_new_tokens": 24,
    }
    runs["seq2seq"] = api.fit("modernize-full", folder / "seq2seq", [f"{k}={v}" for k, v in settings.items()])[0]
    return runs


@contextmanager
def running_server(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port in a background thread; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
