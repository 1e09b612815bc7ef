"""The flow task's own behaviour, beyond the contract (tests/test_contract.py): the process on a 2-D toy
distribution, sampling determinism, classifier-free guidance at w = 0 and 1, image-to-image editing, and
bad input through the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import genlab
from genlab.cli import main
from genlab.errors import GenlabError
from genlab.tasks.flow.pipeline import class_labels, downsample, draw, match_low_res
from genlab.tasks.flow.process import Start, evaluations_per_sample, flow_matching_loss, sample
from genlab.tasks.flow.text import SYNONYMS, TEMPLATES, captions
from genlab.tasks.flow.tiny import tiny_run
from tests.conftest import one_error_line

CENTRES = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])  # the toy: two Gaussians, std 0.3, one per class


class ToyVelocity(nn.Module):
    """A small MLP v(x, t, class) for 2-D points; class 2 is the null condition of guidance."""

    def __init__(self):
        super().__init__()
        self.cond = nn.Embedding(3, 16)
        self.net = nn.Sequential(
            nn.Linear(2 + 1 + 16, 128), nn.SiLU(), nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, 2)
        )

    def forward(self, x, t, cond=None, drop=None):
        labels = torch.full((len(x),), 2) if cond is None else cond
        if drop is not None:
            labels = torch.where(drop, torch.full_like(labels, 2), labels)
        return self.net(torch.cat([x, t[:, None], self.cond(labels)], dim=1))


def toy_data(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.randint(0, 2, (n,), generator=generator)
    return CENTRES[labels] + 0.3 * torch.randn(n, 2, generator=generator), labels


@pytest.fixture(scope="module")
def toy_model():
    torch.manual_seed(0)
    model = ToyVelocity()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(1500):  # about two seconds
        x1, labels = toy_data(256, generator)
        loss = flow_matching_loss(model, x1, labels, generator, cond_dropout=0.2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def near(points: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    return (points - centre).norm(dim=1) < 1.0  # within 3.3 standard deviations


def test_a_flow_trained_for_seconds_moves_noise_onto_the_two_gaussians(toy_model):
    noise = torch.randn(2000, 2, generator=torch.Generator().manual_seed(1))
    points = sample(toy_model, noise, steps=20)  # unconditional: the null condition
    on_left, on_right = near(points, CENTRES[0]), near(points, CENTRES[1])
    assert (on_left | on_right).float().mean() > 0.95  # the noise itself: about 0.32
    assert 0.35 < on_left.float().mean() < 0.65  # both modes, in about equal shares
    assert not (near(noise, CENTRES[0]) | near(noise, CENTRES[1])).float().mean() > 0.5


def test_the_condition_picks_the_gaussian_and_guidance_weights_it(toy_model):
    noise = torch.randn(1000, 2, generator=torch.Generator().manual_seed(2))
    left = torch.zeros(1000, dtype=torch.long)
    for guidance in (1.0, 3.0):
        assert near(sample(toy_model, noise, 20, left, guidance), CENTRES[0]).float().mean() > 0.95
    unguided = sample(toy_model, noise, 20, left, guidance=0.0)
    assert torch.equal(unguided, sample(toy_model, noise, 20))  # w = 0 is exactly the unconditional flow
    assert near(unguided, CENTRES[1]).float().mean() > 0.3  # ... which ignores the class


def test_network_evaluations_per_sample():
    assert evaluations_per_sample(10, 1.5, conditional=True) == 20  # guided: two per step
    assert evaluations_per_sample(10, 1.0, conditional=True) == 10
    assert evaluations_per_sample(10, 0.0, conditional=True) == 10
    assert evaluations_per_sample(10, 3.0, conditional=False) == 10
    assert evaluations_per_sample(10, 1.0, conditional=True, strength=0.6) == 6


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flow")
    tiny = tiny_run(folder)
    assert main(["train", tiny.recipe, *tiny.overrides, "--out", str(folder / "run")]) == 0
    return folder / "run"


def test_sampling_is_deterministic_per_seed(run):
    handle = genlab.load(run)
    a = handle.generate(n=6, seed=3, steps=4).images
    assert torch.equal(a, handle.generate(n=6, seed=3, steps=4).images)
    assert not torch.equal(a, handle.generate(n=6, seed=4, steps=4).images)
    assert a.shape == (6, 1, 28, 28) and 0 <= a.min() and a.max() <= 1
    # batching does not change an image: the noise of image i depends on the seed only
    model = handle.model
    labels = class_labels(model, 6, None)
    guidance = handle.recipe.sample.guidance
    assert torch.allclose(draw(model, 6, 3, labels, 4, guidance, batch_size=4), a, atol=1e-6)


def test_guidance_zero_is_the_unconditional_path_and_one_the_conditional(run):
    model = genlab.load(run).model
    noise = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 3, 5, 9])
    unconditional = sample(model, noise, 3)
    assert torch.equal(sample(model, noise, 3, labels, guidance=0.0), unconditional)
    conditional = sample(model, noise, 3, labels, guidance=1.0)
    assert not torch.allclose(conditional, unconditional)
    # w = 2 extrapolates: x moves by v_u + 2 (v_c - v_u) per step; one step checks the arithmetic
    one_step = sample(model, noise, 1, labels, guidance=2.0)
    expected = 2 * sample(model, noise, 1, labels, 1.0) - sample(model, noise, 1)
    assert torch.allclose(one_step, expected, atol=1e-5)


def write_png(path, array: np.ndarray, mode: str = "L"):
    Image.fromarray(array, mode=mode).save(path)
    return str(path)


def test_editing_keeps_the_image_where_the_mask_says_and_strength_says_how_far(run, tmp_path):
    handle = genlab.load(run)
    init = np.zeros((28, 28), np.uint8)
    init[6:22, 10:18] = 255
    mask = np.zeros((28, 28), np.uint8)
    mask[14:, :] = 255  # redraw the lower half
    init_png, mask_png = write_png(tmp_path / "init.png", init), write_png(tmp_path / "mask.png", mask)
    filled = handle.generate(n=2, label=1, init=init_png, mask=mask_png, steps=4).numpy()
    assert np.abs(filled[:, :14] - init[None, :14] / 255).max() < 1e-5  # the kept half is the image
    assert np.abs(filled[:, 14:] - init[None, 14:] / 255).max() > 0.1  # the rest is drawn anew
    light = handle.generate(n=4, label=1, init=init_png, strength=0.1, steps=10).numpy()
    full = handle.generate(n=4, label=1, init=init_png, strength=1.0, steps=10).numpy()
    assert np.abs(light - init / 255).mean() < 0.5 * np.abs(full - init / 255).mean()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--init", "{tmp}/big.png"], "32x32 pixels"),
        (["--init", "{tmp}/rgb.png"], "1-channel"),
        (["--init", "{tmp}/none.png"], "no such file"),
        (["--init", "{tmp}/init.png", "--strength", "0"], "--strength must be in (0, 1]"),
        (["--init", "{tmp}/init.png", "--strength", "1.5"], "--strength must be in (0, 1]"),
        (["--strength", "0.5"], "give it with --init"),
        (["--init", "{tmp}/init.png", "--mask", "{tmp}/big.png"], "--mask"),
        (["--label", "10"], "--label must be in 0..9"),
        (["--steps", "0"], "--steps must be in 1..1000"),
        (["--guidance", "-1"], "--guidance must be a finite number >= 0"),
        (["--guidance", "nan"], "--guidance must be a finite number, got nan"),
        (["--prompt", "a warm winter coat"], "--prompt needs a text-conditioned model"),
        (["--low-res", "{tmp}/init.png"], "it must be 14x14 or 7x7"),
        (["--low-res", "{tmp}/small.png", "--init", "{tmp}/init.png"], "does not combine with --init"),
    ],
)
def test_bad_input_is_one_line(run, tmp_path, capsys, argv, expected):
    write_png(tmp_path / "init.png", np.zeros((28, 28), np.uint8))
    write_png(tmp_path / "big.png", np.zeros((32, 32), np.uint8))
    write_png(tmp_path / "rgb.png", np.zeros((28, 28, 3), np.uint8), mode="RGB")
    write_png(tmp_path / "small.png", np.zeros((14, 14), np.uint8))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["generate", str(run), *argv, "--out", str(tmp_path / "x.png")]) == 2
    one_error_line(capsys, expected)
    assert not (tmp_path / "x.png").exists()


def test_a_label_for_an_unconditional_model_is_refused(run):
    model = genlab.load(run).model
    model.config.conditioning = "none"  # the same network read as unconditional: labels must be refused
    try:
        with pytest.raises(GenlabError, match="class-conditional"):
            class_labels(model, 4, 3)
    finally:
        model.config.conditioning = "class"


def test_super_resolution_keeps_the_block_means_of_the_low_resolution_image(run, tmp_path):
    model = genlab.load(run).model
    truth = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for factor in (2, 4):
        low = downsample(truth, factor)  # (3, 1, 28/f, 28/f)
        noise = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
        x = sample(model, noise, 4, torch.tensor([1, 2, 3]), 1.5, constrain=match_low_res(low))
        assert torch.allclose(downsample(x, factor), low, atol=1e-5)
        assert not torch.allclose(x, truth, atol=0.1)  # the detail is the model's own
    small = write_png(tmp_path / "small.png", np.full((7, 7), 128, np.uint8))
    assert genlab.load(run).generate(n=2, low_res=small, steps=2).images.shape == (2, 1, 28, 28)


def test_start_with_strength_one_ignores_the_image(run):
    model = genlab.load(run).model
    noise = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    labels = torch.tensor([1, 2])
    image = torch.ones(2, 1, 28, 28)
    assert torch.equal(sample(model, noise, 3, labels, 1.5, Start(image, 1.0)), sample(model, noise, 3, labels, 1.5))


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flow-text")
    tiny = tiny_run(folder)
    assert (
        main(
            [
                "train",
                tiny.recipe,
                *tiny.overrides,
                "model.conditioning=text",
                "train.epochs=1",
                "eval.caption_samples=8",
                "--out",
                str(folder / "run"),
            ]
        )
        == 0
    )
    return folder / "run"


def test_a_text_model_draws_from_a_prompt_and_refuses_a_label(text_run, tmp_path, capsys):
    handle = genlab.load(text_run)
    a = handle.generate(n=3, prompt="a handwritten seven", steps=3)
    assert a.images.shape == (3, 1, 28, 28) and a.labels is None
    assert torch.equal(a.images, handle.generate(n=3, prompt="a handwritten seven", steps=3).images)
    assert not torch.equal(a.images, handle.generate(n=3, prompt="the number two", steps=3).images)
    # without a prompt: the classes in turn, each through one of its training captions
    assert handle.generate(n=12, steps=2).labels.tolist() == [i % 10 for i in range(12)]
    assert main(["generate", str(text_run), "--label", "3", "--out", str(tmp_path / "x.png")]) == 2
    one_error_line(capsys, "give --prompt")
    assert main(["generate", str(text_run), "--prompt", " ", "--out", str(tmp_path / "x.png")]) == 2
    one_error_line(capsys, "--prompt is empty")


def test_caption_accuracy_is_scored_on_at_most_caption_samples_images(text_run, tmp_path, capsys):
    metrics = genlab.load(text_run).evaluate(n=30, steps=1)
    assert metrics["caption_samples"] == 8  # min(n, eval.caption_samples): FID still gets its 30
    for accuracy in metrics["caption_accuracy"].values():
        assert 0 <= accuracy <= 1 and (accuracy * 8) == round(accuracy * 8)
    tiny = tiny_run(tmp_path)
    assert main(["train", tiny.recipe, *tiny.overrides, "eval.caption_samples=0", "--out", str(tmp_path / "r")]) == 2
    one_error_line(capsys, "eval.caption_samples must be >= 1")


def test_held_out_captions_share_no_template_or_phrase_with_training():
    train, _ = captions("fashion-mnist", held_out=False)
    held, held_labels = captions("fashion-mnist", held_out=True)
    assert not set(train) & set(held) and set(held_labels.tolist()) == set(range(10))
    for template in TEMPLATES[1]:
        assert template not in TEMPLATES[0]
    for seen, unseen in SYNONYMS["fashion-mnist"]:
        assert not set(seen) & set(unseen)
