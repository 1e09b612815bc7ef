"""Every CLI command end to end on tiny data, and bad input: one line on stderr, exit 2, no files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from genlab.cli import commands, main
from genlab.core.recipe import recipe_files
from genlab.data.catalog import DERIVED_SETS
from genlab.errors import GenlabError
from genlab.version import __version__ as genlab_version
from tests.conftest import one_error_line, tiny_overrides


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory, tiny_idx_dir):
    """One unconditional and one conditional tiny run, trained through the CLI."""
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_OFFLINE", "1")
        assert main(["train", "essay-mlp-mnist", *tiny_overrides(tiny_idx_dir), "--out", str(root / "plain")]) == 0
        assert main(["train", "conditional-mlp-mnist", *tiny_overrides(tiny_idx_dir), "--out", str(root / "cond")]) == 0
    return root


def listed(out: str, name: str) -> list[str]:
    """The columns of the row that `genlab data list` prints for `name`."""
    rows = [line.split() for line in out.splitlines() if line.split()[:1] == [name]]
    assert len(rows) == 1, out
    return rows[0]


def test_data_list(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert listed(out, "mnist")[1:5] == ["4000", "1000", "10", "bundled"]
    fashion = listed(out, "fashion-mnist")
    if Path("/usr/share/datasets/fashion-mnist").is_dir():
        assert fashion[1:4] == ["60000", "10000", "10"]
    else:
        assert fashion[1:4] == ["-", "-", "-"] and "unavailable:" in fashion
    # Text corpora are listed from caches only: the test cache is empty, so no Bible is parsed here.
    assert " ".join(listed(out, "bible-kjv")).endswith("not parsed yet (first use takes ~2 min)")


def test_data_list_names_every_derived_set_and_what_a_missing_one_needs(capsys, monkeypatch):
    monkeypatch.setenv("GENLAB_EMOJI_FONT", "/nonexistent/emoji.ttf")
    assert main(["data"]) == 0  # `list` is the default action
    out = capsys.readouterr().out
    recipes = set(recipe_files())
    for entry in DERIVED_SETS:
        assert listed(out, entry.name)[1] in ("yes", "no")
        assert set(entry.recipes.split(", ")) <= recipes, entry  # a renamed recipe must be renamed here too
    assert listed(out, "emoji")[1] == "no"
    assert "/nonexistent/emoji.ttf (Debian: sudo apt-get install fonts-noto-color-emoji)" in out


def test_generate_png_and_npy(trained_runs, tmp_path):
    assert main(["generate", str(trained_runs / "plain"), "--n", "16", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plain = str(trained_runs / "plain")
    assert main(["generate", plain, "--n", "5", "--out", str(tmp_path / "s.npy"), "--seed", "3"]) == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (5, 28, 28) and samples.dtype == np.float32
    assert 0.0 <= samples.min() and samples.max() <= 1.0
    main(["generate", str(trained_runs / "plain"), "--n", "5", "--out", str(tmp_path / "again.npy"), "--seed", "3"])
    np.testing.assert_array_equal(samples, np.load(tmp_path / "again.npy"))


def class_template_generator(run: Path) -> None:
    """Overwrite a conditional MLP run's generator with weights that draw the mean test digit of the class
    asked for, whatever the noise: a generator whose labels the evaluator is sure to recognise."""
    from genlab.data import load_image_dataset
    from genlab.evaluation.classifier import to_tensor
    from genlab.io.weights import save_tensors

    data = load_image_dataset("mnist")
    means = torch.stack([to_tensor(data.test_images[data.test_labels == c]).mean(0).flatten() for c in range(10)])
    logits = torch.logit(means.clamp(0.02, 0.98)) * 3  # (10, 784): sigmoid(3 logit) sharpens the strokes
    folder = run / "checkpoints" / "last"
    for path in folder.glob("generator*.safetensors"):
        tensors = load_file(str(path))
        for key in tensors:
            tensors[key] = torch.zeros_like(tensors[key])
        for layer in (0, 2, 4):  # the one-hot label (inputs 100..109 of the first layer) passes through the ReLUs
            first = 100 if layer == 0 else 0
            tensors[f"body.{layer}.weight"][torch.arange(10), first + torch.arange(10)] = 1.0
        tensors["body.6.weight"][:, :10] = logits.T  # (784, 10): one template per class
        save_tensors(path, tensors)


def test_label_picks_the_class_the_evaluator_sees(trained_runs, tmp_path):
    from genlab.evaluation.classifier import load_evaluator

    run = tmp_path / "cond"
    shutil.copytree(trained_runs / "cond", run)
    class_template_generator(run)
    evaluator = load_evaluator("mnist")
    for label in (7, 3):
        out = tmp_path / f"{label}.npy"
        assert main(["generate", str(run), "--n", "8", "--label", str(label), "--seed", "5", "--out", str(out)]) == 0
        predicted = evaluator(torch.from_numpy(np.load(out))[:, None]).argmax(1)
        assert predicted.tolist() == [label] * 8


def test_generate_conditional_label(trained_runs, tmp_path):
    cond = str(trained_runs / "cond")
    for label in ("7", "3", "7"):
        out = tmp_path / f"{label}.npy"
        assert main(["generate", cond, "--n", "4", "--label", label, "--seed", "5", "--out", str(out)]) == 0
    sevens, threes = np.load(tmp_path / "7.npy"), np.load(tmp_path / "3.npy")
    assert sevens.shape == (4, 28, 28)
    # same seed, same noise: only the label differs, and it must reach the generator
    assert np.abs(sevens - threes).max() > 1e-3


def test_eval_writes_report(trained_runs, capsys):
    run = trained_runs / "cond"
    assert main(["eval", str(run), "--n", "200"]) == 0
    report = json.loads((run / "report.json").read_text())
    quality = report["quality"]
    for key in ("fid", "precision", "recall", "inception_score", "class_histogram", "label_accuracy"):
        assert key in quality, key
    assert quality["num_samples"] == 200
    assert abs(sum(quality["class_histogram"].values()) - 1) < 1e-6
    assert report["cost"]["train_flops"] > 0  # the cost ledger sits beside the quality figures


def test_resume_through_cli(trained_runs, tmp_path, capsys):
    run = tmp_path / "plain"
    shutil.copytree(trained_runs / "plain", run)
    assert main(["train", "--resume", str(run), "train.epochs=3"]) == 0
    assert json.loads((run / "report.json").read_text())["cost"]["steps"] == 12


def test_eval_nets_list(capsys):
    assert main(["eval-nets", "list"]) == 0
    assert "mnist" in capsys.readouterr().out


def test_overrides_may_come_before_or_after_the_options(tiny_idx_dir, tmp_path):
    overrides = tiny_overrides(tiny_idx_dir, **{"train.epochs": 1})
    assert main(["train", "essay-mlp-mnist", "--out", str(tmp_path / "after"), *overrides]) == 0
    assert main(["train", "essay-mlp-mnist", *overrides, "--out", str(tmp_path / "before")]) == 0
    for run in ("after", "before"):
        assert json.loads((tmp_path / run / "report.json").read_text())["cost"]["steps"] == 4


def test_resume_of_a_run_without_checkpoint_is_refused(trained_runs, tmp_path, capsys):
    run = tmp_path / "plain"
    shutil.copytree(trained_runs / "plain", run)
    shutil.rmtree(run / "checkpoints")
    before = sorted(p.name for p in run.iterdir())
    assert main(["train", "--resume", str(run)]) == 2
    one_error_line(capsys, "has no checkpoint to resume from")
    assert sorted(p.name for p in run.iterdir()) == before


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["train", "essay-mlp-mnist", "data.name=cifar"], "unknown image dataset 'cifar'"),
        (["train", "essay-mlp-mnist", "train.epochz=1"], "unknown recipe key 'train.epochz'"),
        (["train", "essay-mlp-mnist", "train.epochs=many"], "'train.epochs' must be int"),
        (["train", "no-such-recipe"], "not found"),
        (["train", "--resume", "/nonexistent/run"], "not a genlab run directory"),
        (["generate", "/nonexistent/run", "--out", "x.png"], "not a genlab run directory"),
    ],
)
def test_bad_input_gives_one_line(argv, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    one_error_line(capsys, expected)
    assert not (tmp_path / "runs").exists()  # nothing half-made


def test_corrupt_data_file_fails_cleanly(tmp_path, tiny_idx_dir, capsys):
    for f in tiny_idx_dir.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    blob = (tmp_path / "train-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 3])
    overrides = tiny_overrides(tmp_path)
    assert main(["train", "essay-mlp-mnist", *overrides, "--out", str(tmp_path / "run")]) == 2
    one_error_line(capsys, "corrupt or truncated gzip")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--n", "0"], "--n must be at least 1"),
        (["--n", "-3"], "--n must be at least 1"),
        (["--label", "3"], "needs a class-conditional model"),
        (["--out", "/proc/genlab-samples.png"], "cannot write"),
        (["--out", "{tmp}/missing/dir/s.png"], "does not exist"),
        (["--out", "{tmp}/samples.jpg"], "pass --out FILE ending in .png or .npy, not"),
        (["--prompt", "a seven"], "a 'gan' run does not take prompt for generate (it takes: n, label, seed)"),
    ],
)
def test_generate_bad_input(trained_runs, tmp_path, capsys, args, expected):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "s.png")]
    assert main(["generate", str(trained_runs / "plain"), *args]) == 2
    one_error_line(capsys, expected)
    assert list(tmp_path.iterdir()) == []


def test_image_runs_need_an_out_file(trained_runs, capsys):
    assert main(["generate", str(trained_runs / "plain"), "--n", "4"]) == 2
    one_error_line(capsys, "a 'gan' run writes files: pass --out FILE ending in .png or .npy")


def test_eval_bad_n(trained_runs, capsys):
    assert main(["eval", str(trained_runs / "plain"), "--n", "0"]) == 2
    one_error_line(capsys, "--n must be at least 1")


def test_checkpoint_of_another_architecture(trained_runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_runs / "plain", run)
    assert main(["train", "--resume", str(run), "model.arch=dcgan", "train.epochs=3"]) == 2
    one_error_line(capsys, "from another model")


def test_no_traceback_from_the_installed_command(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "genlab", "train", "essay-mlp-mnist", "model.arch=vae"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert "model.arch must be one of" in result.stderr


def test_the_cli_starts_without_scipy_librosa_or_matplotlib():
    """Training, generating and evaluating start without scipy (FID), librosa (audio) or matplotlib (figures):
    together they cost about a second of every command's start, and are imported where they are used."""
    code = (
        "import sys, genlab.cli.commands\n"
        "print(sorted(m for m in ('scipy', 'librosa', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.stdout.strip() == "[]"


def test_recipes_lists_each_shipped_recipe_with_its_task_and_purpose(capsys):
    assert main(["recipes"]) == 0
    rows = {line.split()[0]: line.split(maxsplit=2) for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert rows["essay-mlp-mnist"][1] == "gan" and rows["essay-mlp-mnist"][2].startswith("The essay's MLP GAN")
    assert rows["fortunes-lora"][1] == "finetune"


def test_a_misspelt_recipe_gets_one_line_with_the_closest_names(capsys):
    assert main(["train", "essay-mlp-mnst"]) == 2
    one_error_line(capsys, "did you mean essay-mlp-mnist")


def test_version_and_help_answer_without_loading_torch():
    """`genlab --version` / `--help` build the parser alone: the commands (and torch) load once one runs."""
    code = (
        "import sys, genlab.cli.parser as p\n"
        "for argv in (['--version'], ['--help']):\n"
        "    try:\n"
        "        p.parse_args(argv)\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0\n"
        "print(sorted(m for m in ('torch', 'genlab.api', 'genlab.cli.commands') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.startswith(f"genlab {genlab_version}\nusage: genlab") and done.stdout.endswith("\n[]\n")


def test_an_option_shared_by_tasks_is_explained_per_command(capsys):
    """--steps means attack steps (image_classifier) or sampling steps (flow); export only takes the sampler's."""
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    export_help = capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    eval_help = " ".join(capsys.readouterr().out.split())
    assert "sampling steps" in export_help and "attack" not in export_help
    assert "attack steps" in eval_help and "sampling steps" in eval_help


def test_an_option_repeatable_for_one_task_is_one_value_for_another():
    """--input is repeated for a video run (first and last frame) and given once for a glyph or VQGAN run."""

    class OneInput:
        task = "one"

        def generate(self, input: str | None = None) -> None: ...

    class ManyInputs:
        def generate(self, input: list[str] | None = None) -> None: ...

    found = commands._signature_options({"one": OneInput.generate, "many": ManyInputs.generate})
    assert typing.get_origin(found["input"][0]) is list
    options = {"input": ["a.png"]}
    commands._one_value_where_one_is_taken(OneInput(), "generate", options)
    assert options == {"input": "a.png"}
    with pytest.raises(GenlabError, match="a 'one' run takes one --input, got 2"):
        commands._one_value_where_one_is_taken(OneInput(), "generate", {"input": ["a.png", "b.png"]})
