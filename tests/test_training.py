"""GAN training specifics on tiny runs: extending a finished run, FLOP counts, the run layout, the
architectures, a checkpoint of another architecture, an interrupted checkpoint rename. (Determinism,
Ctrl-C and resume for every task are in test_contract.py.)"""

from __future__ import annotations

import shutil

import pytest
import torch

from genlab import api
from genlab.core.ema import update_ema
from genlab.core.trainer import StopTraining
from genlab.errors import GenlabError
from genlab.models.gan import GANConfig, build_gan
from genlab.tasks.gan.process import frozen, generator_loss
from tests.conftest import assert_same_weights, tiny_overrides, train, weights

ESSAY = "essay-mlp-mnist"


# every source of state in a step: noise, R1 on/off steps, the EMA generator, translations
ALL_FEATURES = {"train.ema_decay": 0.9, "train.r1_every": 2, "train.augment_shift": 2}


@pytest.mark.parametrize("features", [{}, ALL_FEATURES], ids=["plain", "all-features"])
def test_extending_a_finished_run_equals_training_longer(tmp_path, tiny_idx_dir, features):
    full = tiny_overrides(tiny_idx_dir, **{"train.epochs": 3}, **features)
    train(ESSAY, tmp_path / "full", full)
    train(ESSAY, tmp_path / "split", tiny_overrides(tiny_idx_dir, **{"train.epochs": 1}, **features))
    report = train(ESSAY, tmp_path / "split", ["train.epochs=3"], resume=True)
    assert report["cost"]["steps"] == 12 and report["cost"]["steps_this_session"] == 8
    assert_same_weights(weights(tmp_path / "full"), weights(tmp_path / "split"))


def test_run_directory_contents(tmp_path, tiny_idx_dir):
    report = train(ESSAY, tmp_path / "run", tiny_overrides(tiny_idx_dir))
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
    report = train(ESSAY, tmp_path / "run", tiny_overrides(tiny_idx_dir, **{"train.r1_gamma": 0.0}))
    g_layers = [(100, 256), (256, 512), (512, 1024), (1024, 784)]
    d_layers = [(784, 1024), (1024, 512), (512, 256), (256, 1)]
    b = 64
    fwd = lambda layers, n: sum(2 * n * i * o for i, o in layers)  # noqa: E731
    # G: forward + backward (grad input and weight: 2x forward, the first layer has no input grad)
    g = fwd(g_layers, b) * 3 - 2 * b * 100 * 256
    # D step: forward and backward (no grad to images) over 2B; G step through a frozen D: forward and the
    # gradient with respect to its input only (no weight gradients: 2x forward)
    d_step = fwd(d_layers, 2 * b) * 3 - 2 * 2 * b * 784 * 1024
    g_step_through_d = fwd(d_layers, b) * 2
    assert report["cost"]["train_flops"] == 8 * (g + d_step + g_step_through_d)


def test_g_step_through_a_frozen_discriminator_gives_the_same_generator_gradients():
    torch.manual_seed(0)
    generator, discriminator = build_gan(GANConfig(arch="mlp", latent_dim=100))
    z = torch.randn(8, 100)
    generator_loss(discriminator(generator(z))).backward()
    expected = [p.grad.clone() for p in generator.parameters()]
    generator.zero_grad(), discriminator.zero_grad()
    with frozen(discriminator):
        loss = generator_loss(discriminator(generator(z)))
    loss.backward()
    assert all(torch.equal(p.grad, e) for p, e in zip(generator.parameters(), expected))
    assert all(p.grad is None and p.requires_grad for p in discriminator.parameters())


def test_ema_is_the_per_tensor_lerp_with_warm_up():
    torch.manual_seed(0)
    live, averaged = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in averaged.parameters()]
    update_ema(averaged, live, decay=0.999, step=0)  # warm-up: decay (1 + 0) / (10 + 0) = 0.1
    for avg, old, new in zip(averaged.parameters(), before, live.parameters()):
        assert torch.allclose(avg, 0.1 * old + 0.9 * new.detach())


def test_resume_refuses_a_checkpoint_of_another_architecture(tmp_path, tiny_idx_dir):
    train(ESSAY, tmp_path / "run", tiny_overrides(tiny_idx_dir))
    config = (tmp_path / "run" / "config.yaml").read_bytes()
    with pytest.raises(GenlabError, match="from another model: model.arch='mlp' \\(expected 'dcgan'\\)"):
        train(ESSAY, tmp_path / "run", ["model.arch=dcgan", "train.epochs=3"], resume=True)
    assert (tmp_path / "run" / "config.yaml").read_bytes() == config  # a refused resume changes nothing


def test_existing_run_is_not_overwritten(tmp_path, tiny_idx_dir):
    train(ESSAY, tmp_path / "run", tiny_overrides(tiny_idx_dir))
    with pytest.raises(GenlabError, match="already holds a run"):
        train(ESSAY, tmp_path / "run", tiny_overrides(tiny_idx_dir))


@pytest.mark.parametrize("arch, conditional", [("mlp", True), ("dcgan", False), ("dcgan", True)])
def test_other_architectures_train(tmp_path, tiny_idx_dir, arch, conditional):
    overrides = tiny_overrides(
        tiny_idx_dir, **{"model.arch": arch, "model.conditional": conditional, "model.width": 8, "train.epochs": 1}
    )
    report = train(ESSAY, tmp_path / "run", overrides)
    assert report["cost"]["steps"] == 4


def test_resume_after_an_interrupted_checkpoint_rename(tmp_path, tiny_idx_dir):
    """Killed between the two renames of a save: only checkpoints/last.old exists; resume still works."""
    train(ESSAY, tmp_path / "full", tiny_overrides(tiny_idx_dir))
    train(ESSAY, tmp_path / "cut", tiny_overrides(tiny_idx_dir, **{"train.epochs": 1}))
    checkpoints = tmp_path / "cut" / "checkpoints"
    (checkpoints / "last").rename(checkpoints / "last.old")
    report = train(ESSAY, tmp_path / "cut", ["train.epochs=2"], resume=True)
    assert report["cost"]["steps_this_session"] == 4
    assert_same_weights(weights(tmp_path / "full"), weights(tmp_path / "cut"))


def test_a_save_killed_while_deleting_the_previous_checkpoint(tmp_path, tiny_idx_dir):
    """Killed inside the last step of a save (deleting last.old): a partial last.old stays beside a complete
    last; the resumed run must still save over it and end with the uninterrupted weights."""
    train(ESSAY, tmp_path / "full", tiny_overrides(tiny_idx_dir))
    train(ESSAY, tmp_path / "cut", tiny_overrides(tiny_idx_dir, **{"train.epochs": 1}))
    checkpoints = tmp_path / "cut" / "checkpoints"
    shutil.copytree(checkpoints / "last", checkpoints / "last.old")
    (checkpoints / "last.old" / "meta.json").unlink()  # half deleted
    report = train(ESSAY, tmp_path / "cut", ["train.epochs=2"], resume=True)
    assert report["cost"]["steps_this_session"] == 4
    assert_same_weights(weights(tmp_path / "full"), weights(tmp_path / "cut"))
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best", "last"]


def test_a_period_callback_sees_each_period_and_can_stop_the_run(tiny_idx_dir, tmp_path):
    """The hook a sweep prunes with: called after each period with its metrics; StopTraining ends the run
    there, consistently (a checkpoint at that step, a ledger saying why)."""
    seen = []

    def stop_after_two(step, metrics):
        seen.append((step, metrics["period"]))
        if len(seen) == 2:
            raise StopTraining("pruned")

    run, report = api.fit(
        "essay-mlp-mnist",
        tmp_path / "run",
        tiny_overrides(tiny_idx_dir, **{"train.epochs": 5}),
        on_period=stop_after_two,
    )
    assert [period for _, period in seen] == [1.0, 2.0]
    assert report["cost"]["stopped_by"] == "pruned" and report["cost"]["steps"] == seen[-1][0]
    assert api.load(run).generate(n=4).images.shape == (4, 1, 28, 28)


def test_a_cpu_budget_stops_the_run_and_is_kept_across_resume(tiny_idx_dir, tmp_path):
    """train.max_cpu_minutes counts this process's CPU time, which a busy machine does not eat: a tiny budget
    stops after the first step with a consistent checkpoint; the CPU total is in the ledger and survives resume."""
    budget = ["train.max_cpu_minutes=0.000001"]
    report = train(ESSAY, tmp_path / "run", tiny_overrides(tiny_idx_dir, **{"train.epochs": 5}) + budget)
    cost = report["cost"]
    assert cost["stopped_by"] == "budget" and cost["steps"] == 1
    assert 0 < cost["train_cpu_seconds"] and cost["train_seconds"] > 0
    resumed = train(ESSAY, tmp_path / "run", ["train.max_cpu_minutes=0"], resume=True)["cost"]
    assert resumed["stopped_by"] == "periods" and resumed["train_cpu_seconds"] > cost["train_cpu_seconds"]


def test_a_negative_cpu_budget_is_refused(tiny_idx_dir, tmp_path):
    with pytest.raises(GenlabError, match="max_cpu_minutes"):
        train(ESSAY, tmp_path / "run", tiny_overrides(tiny_idx_dir) + ["train.max_cpu_minutes=-1"])
