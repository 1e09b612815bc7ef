"""L-inf attacks (genlab.evaluation.adversarial) against a case solved in closed form, their constraints
and seeding, and the image_classifier task's robustness check and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from genlab.cli import main
from genlab.core.distributed import DistEnv
from genlab.core.run import RunDir
from genlab.errors import GenlabError
from genlab.evaluation.adversarial import Attack, attack_images, perturb, robust_accuracy
from genlab.models.convnet import ConvNet, ConvNetConfig
from genlab.tasks import load_recipe
from genlab.tasks.image_classifier.process import warmed_up
from genlab.tasks.image_classifier.tiny import tiny_run
from genlab.tasks.image_classifier.training import ClassifierTraining
from tests.conftest import one_error_line

EPS = 0.1


def linear_two_class(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 2))


def margins(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logit of the true class minus the other one's (B,): the example is right while it is > 0."""
    with torch.no_grad():
        logits = model(images)
    return logits.gather(1, labels[:, None])[:, 0] - logits.gather(1, 1 - labels[:, None])[:, 0]


@pytest.fixture
def interior_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose pixels stay in [0, 1] for any L-inf perturbation of EPS: clipping never binds, so the
    worst case is the unconstrained one."""
    generator = torch.Generator().manual_seed(0)
    images = 0.2 + 0.6 * torch.rand(32, 1, 28, 28, generator=generator)
    return images, torch.randint(0, 2, (32,), generator=generator)


def test_fgsm_reaches_the_closed_form_worst_case_of_a_linear_model(interior_batch):
    # For logits W x + b with two classes the margin is (w_y - w_j) . x + const, so the L-inf worst case
    # lowers it by exactly eps * ||w_y - w_j||_1 (at delta = -eps * sign(w_y - w_j)): one signed step finds it.
    images, labels = interior_batch
    model = linear_two_class()
    w = model[1].weight.detach()  # (2, 784)
    drop = EPS * (w[labels] - w[1 - labels]).abs().sum(1)  # (B,)
    optimum = margins(model, images, labels) - drop
    fgsm = perturb(model, images, labels, Attack("fgsm", EPS, random_start=False))
    assert torch.allclose(margins(model, fgsm, labels), optimum, atol=1e-4)
    pgd = perturb(model, images, labels, Attack("pgd", EPS, steps=10, restarts=2), torch.Generator().manual_seed(1))
    assert torch.allclose(margins(model, pgd, labels), optimum, atol=1e-4)  # no worse than FGSM, and no better
    # A random start and a 1.25 eps step cannot beat the optimum either: that would leave the ball.
    rs = perturb(model, images, labels, Attack("fgsm", EPS), torch.Generator().manual_seed(2))
    assert (margins(model, rs, labels) >= optimum - 1e-4).all()
    assert (margins(model, rs, labels) < margins(model, images, labels)).all()


def test_a_weaker_pgd_does_not_reach_the_optimum(interior_batch):
    # The closed-form check can fail: 3 steps of eps/10 from a random start cannot reach the ball's corner.
    images, labels = interior_batch
    model = linear_two_class()
    w = model[1].weight.detach()
    optimum = margins(model, images, labels) - EPS * (w[labels] - w[1 - labels]).abs().sum(1)
    short = perturb(model, images, labels, Attack("pgd", EPS, steps=3, step_size=EPS / 10))
    assert (margins(model, short, labels) > optimum + 1e-3).all()


@pytest.mark.parametrize(
    "attack",
    [
        Attack("fgsm", 0.3, random_start=False),
        Attack("fgsm", 0.3),
        Attack("pgd", 0.3, steps=5, restarts=2, step_size=0.2),
    ],
    ids=["fgsm", "fgsm-rs", "pgd"],
)
def test_attacks_stay_in_the_ball_and_in_the_unit_interval(attack):
    torch.manual_seed(0)
    model = ConvNet(ConvNetConfig())
    generator = torch.Generator().manual_seed(0)
    images = (torch.rand(16, 1, 28, 28, generator=generator) > 0.5).float()  # all 0 or 1: clipping binds
    labels = torch.randint(0, 10, (16,), generator=generator)
    adversarial = attack_images(model, images, labels, attack, seed=3)
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert (adversarial - images).abs().max() <= 0.3 + 1e-6
    assert (adversarial != images).any()


def test_attacks_are_seeded_and_leave_the_model_alone():
    torch.manual_seed(0)
    model = ConvNet(ConvNetConfig()).train()
    images, labels = torch.rand(24, 1, 28, 28), torch.randint(0, 10, (24,))
    attack = Attack("pgd", 0.2, steps=3, restarts=2)
    first = attack_images(model, images, labels, attack, seed=5, batch_size=10)
    assert torch.equal(first, attack_images(model, images, labels, attack, seed=5, batch_size=10))
    assert not torch.equal(first, attack_images(model, images, labels, attack, seed=6, batch_size=10))
    assert robust_accuracy(model, images, labels, attack, seed=5) == robust_accuracy(
        model, images, labels, attack, seed=5
    )
    assert model.training and all(p.grad is None for p in model.parameters())


def test_robust_accuracy_keeps_the_worst_restart_and_is_clean_accuracy_at_eps_0():
    torch.manual_seed(0)
    model = linear_two_class()
    images, labels = 0.5 + 0.05 * torch.randn(200, 1, 28, 28).clamp(-1, 1), torch.randint(0, 2, (200,))
    clean = robust_accuracy(model, images, labels, Attack("pgd", 0.0))
    assert clean["robust_accuracy"] == clean["clean_accuracy"]
    weak = dict(epsilon=0.002, steps=2, step_size=0.0005)  # weak enough that restarts matter
    one = robust_accuracy(model, images, labels, Attack("pgd", restarts=1, **weak), seed=0)["robust_accuracy"]
    five = robust_accuracy(model, images, labels, Attack("pgd", restarts=5, **weak), seed=0)["robust_accuracy"]
    assert five <= one <= clean["clean_accuracy"]


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"epsilon": -0.1}, "epsilon must be in"),
        ({"name": "cw"}, "unknown attack 'cw'"),
        ({"steps": 0}, "steps and restarts"),
        ({"step_size": 0.0}, "step size"),
    ],
)
def test_bad_attack_settings_are_one_line(settings, message):
    with pytest.raises(GenlabError, match=message):
        Attack(**settings)


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory) -> tuple[list[str], Path]:
    folder = tmp_path_factory.mktemp("classifier")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_OFFLINE", "1")
        mp.setenv("GENLAB_DATA_DIR", str(folder / "cache"))
        tiny = tiny_run(folder)
        assert main(["train", tiny.recipe, *tiny.overrides, "--out", str(folder / "run")]) == 0
    return tiny.cli_generate, folder / "run"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["eval", "RUN", "--epsilon", "-0.1"], "epsilon must be in"),
        (["eval", "RUN", "--attack", "cw"], "unknown attack 'cw'"),
        (["eval", "RUN", "--limit", "-1"], "limit must be >= 0"),
        (["generate", "RUN", "--n", "2", "--out", "OUT.npy"], "ending in .png"),
        (["generate", "RUN", "--n", "2", "--label", "10", "--out", "OUT.png"], "label must be in"),
    ],
)
def test_bad_input_through_the_cli_is_one_line_and_exit_2(tiny_classifier, argv, message, tmp_path, capsys):
    _, run = tiny_classifier
    argv = [str(run) if a == "RUN" else a.replace("OUT", str(tmp_path / "out")) for a in argv]
    capsys.readouterr()
    assert main(argv) == 2
    assert message in one_error_line(capsys)


def test_eval_at_eps_0_and_a_stronger_attack(tiny_classifier, capsys):
    _, run = tiny_classifier
    assert main(["eval", str(run), "--epsilon", "0", "--limit", "50"]) == 0
    section = json.loads((run / "report.json").read_text())["robustness"]
    assert section["robust_accuracy"] == section["clean_accuracy"] and section["epsilon"] == 0
    assert section["test_images"] == "the first 50 of the test split"
    assert [row["epoch"] for row in section["per_epoch"]] == [1.0, 2.0]


def test_catastrophic_overfitting_is_flagged_with_a_warning(tmp_path, capsys):
    # A collapse of held-out PGD accuracy below its best (here: an earlier epoch said 100 %) is flagged.
    tiny = tiny_run(tmp_path)
    recipe = load_recipe(tiny.recipe, tiny.overrides)
    torch.manual_seed(0)
    run = RunDir(tmp_path / "run")
    training = ClassifierTraining(recipe, DistEnv(), run)
    run.samples_dir.mkdir(parents=True)
    calm = training.end_period(1, run)
    assert calm["monitor/catastrophic_overfitting"] == 0.0 and "warning" not in capsys.readouterr().out
    training.best_robust = 1.0
    flagged = training.end_period(2, run)
    assert flagged["monitor/catastrophic_overfitting"] == 1.0 and training.overfit_epoch == 2
    assert "warning: catastrophic overfitting at epoch 2" in capsys.readouterr().out
    assert (run.samples_dir / "epoch_0002.png").is_file()


def test_benchmark_dry_run_writes_results_that_hold_together(tmp_path):
    # The benchmark's tiny mode end to end: three tiny runs, our PGD and ART's on the same models.
    pytest.importorskip("art")
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "adversarial_benchmark.py"
    result = subprocess.run(
        [sys.executable, str(script), "--dry-run", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "GENLAB_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads((tmp_path / "adversarial_benchmark.json").read_text())["datasets"]["fashion"]["methods"]
    for row in rows.values():
        assert 0 <= row["robust_accuracy"] <= row["clean_accuracy"] <= 1 and row["train_flops"] > 0
        difference = 100 * (row["art_robust_accuracy"] - row["robust_accuracy"])
        assert row["art_minus_ours_points"] == pytest.approx(difference, abs=0.01)
    # FLOPs per step: a standard step < an FGSM-RS step (one more pass) < a PGD step (pgd_steps more).
    assert rows["standard"]["train_flops"] < rows["fgsm-rs"]["train_flops"] < rows["pgd"]["train_flops"]
    assert (tmp_path / "adversarial_benchmark.png").read_bytes()[:4] == b"\x89PNG"


def test_epsilon_warmup_grows_the_training_radius_linearly():
    attack = Attack("fgsm", 0.3)
    assert warmed_up(attack, 0, 10).epsilon == pytest.approx(0.03)
    assert warmed_up(attack, 4, 10).alpha == pytest.approx(1.25 * 0.15)  # the default step scales along
    assert warmed_up(attack, 10, 10) is attack and warmed_up(attack, 0, 0) is attack
