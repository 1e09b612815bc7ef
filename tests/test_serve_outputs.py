"""`genlab generate --out`: one rule for every medium — a file path means one item unless --n says more, a
folder means many (the task's default). The CLI applies it for every task whose generate takes `n`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from genlab import api
from genlab.cli import main
from genlab.tasks import TASKS
from tests.conftest import one_error_line

SHORTER = {"audio": ["train.epochs=1"], "gan": []}  # trained as little as the rule needs


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("outputs")
    out = {}
    for name in ("audio", "gan"):
        tiny = TASKS[name].tiny(folder / f"{name}-data")
        out[name] = api.fit(tiny.recipe, folder / name, [*tiny.overrides, *SHORTER[name]])[0]
    return out


def test_a_wav_path_without_n_gets_one_clip_and_a_folder_many(runs, tmp_path, capsys):
    assert main(["generate", str(runs["audio"]), "--label", "7", "--out", str(tmp_path / "seven.wav")]) == 0
    wave, rate = sf.read(tmp_path / "seven.wav")
    assert wave.ndim == 1 and len(wave) == rate  # one one-second clip
    assert main(["generate", str(runs["audio"]), "--out", str(tmp_path / "clips")]) == 0
    assert len(list((tmp_path / "clips").glob("*.wav"))) == 10  # a folder: the task's default n
    capsys.readouterr()
    assert main(["generate", str(runs["audio"]), "--n", "3", "--out", str(tmp_path / "three.wav")]) == 2
    one_error_line(capsys, "3 clips need a folder")
    assert not (tmp_path / "three.wav").exists()


def test_an_image_path_without_n_gets_one_image_and_n_says_more(runs, tmp_path):
    assert main(["generate", str(runs["gan"]), "--out", str(tmp_path / "one.npy")]) == 0
    assert np.load(tmp_path / "one.npy").shape == (1, 28, 28)
    assert main(["generate", str(runs["gan"]), "--n", "5", "--out", str(tmp_path / "five.npy")]) == 0
    assert np.load(tmp_path / "five.npy").shape == (5, 28, 28)
