"""Determinism, resume-equals-uninterrupted, Ctrl-C, and wrong checkpoints, on tiny runs."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from genlab.config import load_recipe
from genlab.errors import GenlabError
from genlab.pipeline import train
from genlab.training.gan import GanTask
from tests.conftest import tiny_overrides


def weights(run_path):
    folder = run_path / "checkpoints" / "last"
    return {f.stem: load_file(str(f)) for f in folder.glob("*.safetensors")}


def assert_same_weights(a, b):
    for name in a:
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), f"{name}.{key} differs"


def test_same_seed_same_weights_and_other_seed_differs(tmp_path, tiny_idx_dir):
    for out, seed in (("a", 0), ("b", 0), ("c", 1)):
        train(load_recipe("essay-mlp-mnist", tiny_overrides(tiny_idx_dir, seed=seed)), tmp_path / out)
    assert_same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))
    with pytest.raises(AssertionError):
        assert_same_weights(weights(tmp_path / "a"), weights(tmp_path / "c"))


# every source of state in a step: noise, R1 on/off steps, the EMA generator, translations
ALL_FEATURES = {"train.ema_decay": 0.9, "train.r1_every": 2, "train.augment_shift": 2}


@pytest.mark.parametrize("features", [{}, ALL_FEATURES], ids=["plain", "all-features"])
def test_resume_equals_uninterrupted(tmp_path, tiny_idx_dir, features):
    full = load_recipe("essay-mlp-mnist", tiny_overrides(tiny_idx_dir, **{"train.epochs": 3}, **features))
    train(full, tmp_path / "full")
    first = load_recipe("essay-mlp-mnist", tiny_overrides(tiny_idx_dir, **{"train.epochs": 1}, **features))
    train(first, tmp_path / "split")
    report = train(full, tmp_path / "split", resume=True)
    assert report["cost"]["steps"] == 12 and report["cost"]["steps_this_session"] == 8
    assert_same_weights(weights(tmp_path / "full"), weights(tmp_path / "split"))


def test_ctrl_c_mid_epoch_leaves_a_checkpoint_that_resumes_exactly(tmp_path, tiny_idx_dir, monkeypatch):
    recipe = load_recipe("essay-mlp-mnist", tiny_overrides(tiny_idx_dir))
    train(recipe, tmp_path / "full")

    real_step = GanTask.train_step

    def interrupted_step(self, indices, step):
        if step == 5:  # in the middle of epoch 2
            raise KeyboardInterrupt
        return real_step(self, indices, step)

    monkeypatch.setattr(GanTask, "train_step", interrupted_step)
    with pytest.raises(GenlabError, match="interrupted at step 5; resumable checkpoint saved"):
        train(recipe, tmp_path / "cut")
    monkeypatch.setattr(GanTask, "train_step", real_step)
    report = train(recipe, tmp_path / "cut", resume=True)
    assert report["cost"]["steps_this_session"] == 3
    assert_same_weights(weights(tmp_path / "full"), weights(tmp_path / "cut"))
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "cut" / "checkpoints").iterdir())


def test_run_directory_contents(tmp_path, tiny_idx_dir):
    report = train(load_recipe("essay-mlp-mnist", tiny_overrides(tiny_idx_dir)), tmp_path / "run")
    run = tmp_path / "run"
    assert (run / "config.yaml").is_file() and (run / "metrics.jsonl").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]
    assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir())
    cost = report["cost"]
    assert cost["examples_seen"] == 8 * 64 and cost["train_flops"] > 0
    assert cost["parameters"]["generator"] == 100 * 256 + 256 + 256 * 512 + 512 + 512 * 1024 + 1024 + 1024 * 784 + 784
    assert cost["parameters"]["discriminator"] == 784 * 1024 + 1024 + 1024 * 512 + 512 + 512 * 256 + 256 + 257


def test_training_flops_match_closed_form(tmp_path, tiny_idx_dir):
    """FLOPs of one plain step of the MLP pair, from matmul sizes: 2*m*n*k per matmul."""
    recipe = load_recipe("essay-mlp-mnist", tiny_overrides(tiny_idx_dir, **{"train.r1_gamma": 0.0}))
    report = train(recipe, tmp_path / "run")
    g_layers = [(100, 256), (256, 512), (512, 1024), (1024, 784)]
    d_layers = [(784, 1024), (1024, 512), (512, 256), (256, 1)]
    b = 64
    fwd = lambda layers, n: sum(2 * n * i * o for i, o in layers)  # noqa: E731
    # G: forward + backward (grad input and weight: 2x forward, the first layer has no input grad)
    g = fwd(g_layers, b) * 3 - 2 * b * 100 * 256
    # D step: forward and backward (no grad to images) over 2B; G step: forward and backward to the input
    d_step = fwd(d_layers, 2 * b) * 3 - 2 * 2 * b * 784 * 1024
    g_step_through_d = fwd(d_layers, b) * 3
    assert report["cost"]["train_flops"] == 8 * (g + d_step + g_step_through_d)


def test_resume_refuses_a_checkpoint_of_another_architecture(tmp_path, tiny_idx_dir):
    train(load_recipe("essay-mlp-mnist", tiny_overrides(tiny_idx_dir)), tmp_path / "run")
    other = load_recipe("essay-mlp-mnist", tiny_overrides(tiny_idx_dir, **{"model.arch": "dcgan", "train.epochs": 3}))
    with pytest.raises(GenlabError, match="from another model: model.arch='mlp' \\(expected 'dcgan'\\)"):
        train(other, tmp_path / "run", resume=True)


def test_existing_run_is_not_overwritten(tmp_path, tiny_idx_dir):
    recipe = load_recipe("essay-mlp-mnist", tiny_overrides(tiny_idx_dir))
    train(recipe, tmp_path / "run")
    with pytest.raises(GenlabError, match="already holds a run"):
        train(recipe, tmp_path / "run")


@pytest.mark.parametrize("arch, conditional", [("mlp", True), ("dcgan", False), ("dcgan", True)])
def test_other_architectures_train(tmp_path, tiny_idx_dir, arch, conditional):
    overrides = tiny_overrides(tiny_idx_dir, **{"model.arch": arch, "model.conditional": conditional,
                                                "model.width": 8, "train.epochs": 1})
    report = train(load_recipe("essay-mlp-mnist", overrides), tmp_path / "run")
    assert report["cost"]["steps"] == 4


def test_resume_after_an_interrupted_checkpoint_rename(tmp_path, tiny_idx_dir):
    """Killed between the two renames of a save: only checkpoints/last.old exists; resume still works."""
    recipe = load_recipe("essay-mlp-mnist", tiny_overrides(tiny_idx_dir))
    train(recipe, tmp_path / "full")
    train(load_recipe("essay-mlp-mnist", tiny_overrides(tiny_idx_dir, **{"train.epochs": 1})), tmp_path / "cut")
    checkpoints = tmp_path / "cut" / "checkpoints"
    (checkpoints / "last").rename(checkpoints / "last.old")
    report = train(recipe, tmp_path / "cut", resume=True)
    assert report["cost"]["steps_this_session"] == 4
    assert_same_weights(weights(tmp_path / "full"), weights(tmp_path / "cut"))
