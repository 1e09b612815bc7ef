"""Run the README's quick tour, every line in order, at seconds-size, in a temporary folder.

    python scripts/tour.py [--dir FOLDER]     # from the repository root; PYTHONPATH=. if genlab is not installed

Each `genlab train` gets the overrides its task's contract test uses (genlab/tasks/<task>/tiny.py), pointed
at tiny copies of the data the recipe names (256 MNIST digits, 512 Fashion-MNIST images, a few hundred lines
of Bible-like text, KJV -> modern sentence pairs, one voice per split saying the ten digits), so a line runs
in seconds and the line after it reads what it made. The tour's own overrides (`train.epochs=3`) still win.
Beside that: `make demo` first (runs/demo, which the tour reads), `--trials 2` for the sweep, `--limit 20` for
attacks and protocols, `genlab serve` started until it answers /v1/models and then stopped with Ctrl-C, and
`tensorboard` and the venv activation skipped with a reason. Exit status 1 at the first line that fails.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from genlab.cli import main as genlab
from genlab.core.recipe import read_recipe_tree
from genlab.data import load_image_dataset
from genlab.data.audio import SPEAKERS, synthesize
from genlab.data.idx import write_idx
from genlab.data.images import IDX_FILES, write_mnist_subset
from genlab.tasks import DEFAULT_TASK, TASKS
from genlab.tasks.lm.tiny import WORDS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIPPED = {  # first word of a line -> why the tour does not run it
    ".": "the tour runs with this Python",
    "source": "the tour runs with this Python",
    "tensorboard": "a long-lived server; the event files it reads are written by every run",
}
SERVE_SECONDS = 120  # how long `genlab serve` may take to load its runs and answer


def tour_lines(readme: Path = README) -> list[str]:
    """The commands of the README's quick tour, in order (`a && b` as two)."""
    text = readme.read_text(encoding="utf-8")
    block = text.split("## Quick tour", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        command = re.split(r"\s#\s", line)[0].strip()  # the comment after a line: two spaces, then "# "
        commands += [part.strip() for part in command.split(" && ") if part.strip()]
    return commands


def write_fashion_subset(folder: Path, train: int, test: int) -> Path:
    """The first `train` / `test` Fashion-MNIST images as the four IDX files (Debian's dataset-fashion-mnist)."""
    data = load_image_dataset("fashion-mnist")
    arrays = {
        "train_images": data.train_images[:train],
        "train_labels": data.train_labels[:train].astype(np.uint8),
        "test_images": data.test_images[:test],
        "test_labels": data.test_labels[:test].astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in IDX_FILES.items():
        write_idx(folder / name, arrays[key])
    return folder


def sentences(n: int, seed: int) -> list[str]:
    """Distinct short sentences over the tiny language model's words, in two registers."""
    rng = np.random.default_rng(seed)
    found: set[str] = set()
    while len(found) < n:
        found.add(" ".join(rng.choice(WORDS, size=4)))
    return sorted(found)


def modern(sentence: str) -> str:
    return sentence.replace("thou hast", "you have").replace("thou", "you").replace("hast", "have")


class TinyData:
    """Tiny copies of the data the tour's recipes name, written once into one folder."""

    def __init__(self, folder: Path) -> None:
        self.digits = folder / "audio" / "tiny-digits"  # where the audio task's tiny run looks for its clips
        if not (self.digits / "manifest.json").is_file():  # one voice per split, saying every digit (tiny: 0-4)
            synthesize(self.digits, [SPEAKERS[1], SPEAKERS[0]], digits=range(10), workers=1, progress=False)
        self.tiny = {name: task.tiny(folder / name) for name, task in TASKS.items()}
        self.mnist = write_mnist_subset(folder / "mnist", train=256, test=100)
        self.fashion = write_fashion_subset(folder / "fashion", train=512, test=100)
        # "And God said" and the other prompts must be made of characters the char tokenizer has seen
        lines = [f"And God said, Let there be {s}: and there was {modern(s)}." for s in sentences(300, 1)]
        self.corpus = folder / "bible.txt"
        self.corpus.write_text("\n".join(lines + sentences(300, 2)) + "\n", encoding="utf-8")
        self.pairs = folder / "modernize.jsonl"
        pairs = [{"source": s, "target": modern(s)} for s in sentences(300, 3)]
        self.pairs.write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")

    def overrides(self, recipe: str) -> list[str]:
        """The tiny overrides for one recipe: its task's contract-test settings, on the tour's tiny data."""
        tree = read_recipe_tree(recipe)
        task = str(tree.get("task", DEFAULT_TASK))
        settings = list(self.tiny[task].overrides)
        fashion = tree.get("data", {}).get("name") == "fashion-mnist"
        if task in ("gan", "flow", "image_classifier"):
            name = "fashion-mnist" if fashion else "mnist"
            settings += [f"data.path={self.fashion if fashion else self.mnist}", f"data.name={name}"]
        if task == "lm":
            settings += [f"data.corpus={self.corpus}", "data.vocab_size=300"]  # a BPE vocabulary this corpus fills
        if task == "finetune" and str(tree.get("start", "")).startswith("runs/"):  # seq2seq from the tour's GPT
            settings = [s for s in settings if not s.startswith(("start=", "data.dataset=", "method."))]
            settings += [
                f"data.dataset={self.pairs}",
                "data.eval_limit=10",
                "eval.max_new_tokens=12",
                f"start={tree['start']}",
            ]
        return [f"{k}={v}" for k, v in dict(s.split("=", 1) for s in settings).items()]  # the last of a key wins


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_briefly(argv: list[str], env: dict[str, str]) -> int:
    """Start `genlab serve`, wait until /v1/models lists every run, then stop it as a user would (Ctrl-C)."""
    port = free_port()
    names = sorted(Path(a).name for a in argv[1:] if not a.startswith("-"))
    server = subprocess.Popen([sys.executable, "-m", "genlab", *argv, "--port", str(port)], env=env)
    try:
        deadline = time.monotonic() + SERVE_SECONDS
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as answer:
                    served = sorted(m["id"] for m in json.load(answer)["data"])
                print(f"  served {served} at http://127.0.0.1:{port}/")
                return 0 if served == names else 1
            except OSError:
                time.sleep(0.5)
        print(f"  genlab serve did not answer within {SERVE_SECONDS} s")
        return 1
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def with_option(argv: list[str], option: str, value: str) -> list[str]:
    """argv with `option value` set: replaced where it is given, added where it is not."""
    if option in argv:
        i = argv.index(option)
        return [*argv[: i + 1], value, *argv[i + 2 :]]
    return [*argv, option, value]


def tiny_argv(argv: list[str], data: TinyData) -> list[str]:
    """A tour line's genlab arguments at seconds-size."""
    sub = argv[0]
    if sub in ("train", "sweep") and "--resume" not in argv:
        argv = [sub, argv[1], *data.overrides(argv[1]), *argv[2:]]  # the line's own overrides come later and win
    if sub == "sweep":
        argv = with_option(argv, "--trials", "2")
    if sub == "eval" and ("--attack" in argv or "--protocol" in argv) and "--limit" not in argv:
        argv = [*argv, "--limit", "20"]
    return [token for a in argv for token in (sorted(glob.glob(a)) or [a] if "*" in a else [a])]  # as a shell


def run_line(line: str, data: TinyData, env: dict[str, str]) -> int:
    words = shlex.split(line)
    if words[0] in SKIPPED:
        print(f"  skipped: {SKIPPED[words[0]]}")
        return 0
    if words[0] == "torchrun":  # `torchrun ... -m genlab train ...`: the launcher of this Python
        at = words.index("genlab")
        argv = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            *words[1:at],
            "genlab",
            *tiny_argv(words[at + 1 :], data),
        ]
        return subprocess.run(argv, env=env).returncode
    if words[0] != "genlab":
        print("  skipped: not a genlab command")
        return 0
    argv = tiny_argv(words[1:], data)
    if argv[0] == "serve":
        return serve_briefly(argv, env)
    if argv[0] == "sweep":  # its workers are processes of their own
        return subprocess.run([sys.executable, "-m", "genlab", *argv], env=env).returncode
    try:
        return genlab(argv)
    except SystemExit as done:  # argparse answers --version and --help by exiting
        return done.code or 0


def make_demo(data: TinyData) -> int:
    """What `make demo` does (Makefile), tiny: the tour reads runs/demo."""
    steps = [
        ["train", "essay-mlp-mnist", *data.overrides("essay-mlp-mnist"), "--out", "runs/demo"],
        ["generate", "runs/demo", "--n", "100", "--out", "runs/demo/samples.png"],
        ["eval", "runs/demo"],
    ]
    return next((rc for rc in map(genlab, steps) if rc != 0), 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="run here instead of a new temporary folder (kept)")
    args = parser.parse_args(argv)
    folder = args.dir or Path(tempfile.mkdtemp(prefix="genlab-tour-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.setdefault("GENLAB_OFFLINE", "1")
    os.environ.update(env)
    os.chdir(folder)
    if not Path("examples").exists():  # the tour's lines name files of a clone (--space examples/sweeps/...)
        Path("examples").symlink_to(ROOT / "examples")
    start = time.monotonic()
    print(f"tour in {folder}: writing tiny data", flush=True)
    data = TinyData(folder / "tiny-data")
    lines = ["make demo", *tour_lines()]
    for number, line in enumerate(lines, 1):
        began = time.monotonic()
        print(f"[{number}/{len(lines)}] $ {line}", flush=True)
        rc = make_demo(data) if line == "make demo" else run_line(line, data, env)
        print(f"  ({time.monotonic() - began:.1f} s)", flush=True)
        if rc != 0:
            print(f"tour: line {number} failed with exit status {rc}: {line}", file=sys.stderr)
            return 1
    print(f"tour: all {len(lines)} lines ran in {time.monotonic() - start:.0f} s ({folder})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
