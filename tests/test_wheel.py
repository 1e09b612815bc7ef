"""A newcomer's path: genlab built as a wheel, installed into a fresh virtual environment outside the checkout,
runs its own shipped recipes from any folder.

Offline and quick: the wheel is built without build isolation (setuptools from this environment), and the fresh
environment reaches the heavy dependencies (torch, ...) through a .pth file naming this environment's
site-packages, which Python appends after the fresh environment's own, so the installed wheel's genlab comes first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from genlab.version import __version__

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ folder of a fresh virtual environment with genlab's wheel installed in it."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a clean copy: building in the checkout would leave build/ and *.egg-info behind
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "genlab", source / "genlab", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip"]
    run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", root / "dist", source, cwd=root)
    (wheel,) = (root / "dist").glob("genlab-*.whl")
    assert wheel.name.startswith(f"genlab-{__version__}-")
    assert "genlab/recipes/essay-mlp-mnist.yaml" in zipfile.ZipFile(wheel).namelist()

    venv = root / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=root)
    python = venv / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=root).strip()
    heavy = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(site) / "genlab-test-dependencies.pth").write_text("\n".join(sorted(heavy)) + "\n")
    run(*pip, "--python", python, "install", "--no-deps", "--no-index", "-q", wheel, cwd=root)
    return venv / "bin"


@pytest.fixture()
def elsewhere(tmp_path) -> tuple[Path, dict[str, str]]:
    """A folder outside the checkout, and an environment without the checkout on the import path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GENLAB_RECIPES")}
    return tmp_path, {**env, "GENLAB_OFFLINE": "1"}


def test_the_installed_command_knows_its_version_and_imports_the_installed_package(installed, elsewhere):
    folder, env = elsewhere
    assert run(installed / "genlab", "--version", cwd=folder, env=env).strip() == f"genlab {__version__}"
    code = "import genlab, importlib.metadata as m; print(genlab.__file__, m.version('genlab'))"
    where, version = run(installed / "python", "-c", code, cwd=folder, env=env).split()
    assert Path(where).is_relative_to(installed.parent) and version == __version__


def test_the_installed_command_lists_the_shipped_recipes_and_the_users(installed, elsewhere):
    folder, env = elsewhere
    mine = folder / "my-recipes"
    mine.mkdir()
    (mine / "tiny-essay.yaml").write_text("# My tiny essay GAN.\ntask: gan\n")
    listing = run(installed / "genlab", "recipes", cwd=folder, env={**env, "GENLAB_RECIPES": str(mine)})
    rows = {line.split()[0]: line for line in listing.splitlines() if line.strip()}
    assert "gan" in rows["essay-mlp-mnist"] and "finetune" in rows["modernize-lora"]
    assert rows["tiny-essay*"].endswith("My tiny essay GAN.")


def test_the_installed_command_trains_a_shipped_recipe_from_another_folder(installed, elsewhere):
    folder, env = elsewhere
    tiny = ["train.epochs=1", "data.limit=256", "data.batch_size=64", "train.progress=false"]
    out = run(installed / "genlab", "train", "essay-mlp-mnist", *tiny, "--out", "run", cwd=folder, env=env)
    assert "trained 4 steps" in out
    assert (folder / "run" / "report.json").is_file() and list((folder / "run" / "checkpoints").iterdir())
