"""Plot a language-model run's training loss and validation loss from its metrics.jsonl to a PNG.

python scripts/plot_lm_curve.py RUN docs/img/char-gpt-kjv-loss.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib
import yaml

matplotlib.use("Agg")  # no display on servers
import matplotlib.pyplot as plt  # noqa: E402


def main(run: Path, out: Path) -> None:
    config = yaml.safe_load((run / "config.yaml").read_text())
    if config.get("task") != "lm":
        sys.exit(f"{run} is a '{config.get('task', 'gan')}' run, not a language-model (task: lm) run")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # Every 20th step logs its {"loss", "lr"}; each evaluation (every train.eval_interval steps) logs the
    # step's loss again with "val/loss": one training point per step either way.
    train = sorted({r["step"]: r["loss"] for r in rows if "loss" in r}.items())
    val = [(r["step"], r["val/loss"]) for r in rows if "val/loss" in r]
    if not train or not val:
        sys.exit(f"{run / 'metrics.jsonl'} has no training or validation loss yet")
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot(*zip(*train), lw=0.8, alpha=0.6, label="train loss (every 20 steps and at evaluations)")
    ax.plot(*zip(*val), "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.set_title(config["name"])
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python scripts/plot_lm_curve.py RUN OUT.png")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
