"""The latent video model: the per-frame autoencoder, the flow over its latent planes, and a run whose
first steps train the autoencoder and whose later steps leave it untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import genlab
from genlab.cli import main
from genlab.models.frame_codec import FrameCodec
from genlab.models.video_unet import VideoUNet, VideoUNetConfig
from genlab.tasks.video.pipeline import sample_frames, to_model, to_pixels
from genlab.tasks.video.process import masked_flow_loss, mode_mask
from genlab.tasks.video.tiny import tiny_run


def test_codec_shapes_and_calibrated_scale():
    torch.manual_seed(0)
    codec = FrameCodec(channels=3, width=8)
    clips = torch.rand(2, 5, 16, 16) * 2 - 1
    codec.calibrate(clips)
    z = codec.encode(clips)
    assert z.shape == (2, 15, 4, 4) and z.std().item() == pytest.approx(1.0, rel=1e-4)
    assert codec.decode(z).shape == clips.shape
    loss = codec.reconstruction_loss(clips.reshape(-1, 1, 16, 16), torch.Generator().manual_seed(0), 0.1)
    loss.backward()
    assert torch.isfinite(loss) and codec.encoder[0].weight.grad is not None


def test_latent_network_samples_planes_and_keeps_the_given_frames_exactly():
    torch.manual_seed(0)
    net = VideoUNet(VideoUNetConfig(frames=6, size=16, patch=1, width=16, latent=2, codec_width=8))
    assert (net.config.planes, net.config.grid) == (12, 4)
    clips = torch.rand(2, 6, 16, 16) * 2 - 1
    mask = torch.stack([mode_mask("predict", 6, 3), mode_mask("between", 6, 3)])
    planes, plane_mask = net.encode(clips), net.plane_mask(mask)
    assert planes.shape == (2, 12, 4, 4) and plane_mask.shape == (2, 12) and plane_mask[0, :6].all()
    loss = masked_flow_loss(net, planes.detach(), plane_mask, None, torch.Generator().manual_seed(0), 0.2)
    assert torch.isfinite(loss)
    with torch.no_grad():
        out = sample_frames(net, torch.randn(2, 12, 4, 4), clips, mask, torch.tensor([[2, 9], [0, 1]]), 2, 2.0)
    given = mask.bool()
    assert out.shape == clips.shape and torch.allclose(out[given], to_pixels(clips)[given], atol=1e-6)


@pytest.fixture(scope="module")
def latent_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("video-latent")
    case = tiny_run(folder)
    latent = ["model.layout=stacked", "model.latent=2", "model.codec_width=8", "model.patch=1", "train.codec_steps=3"]
    assert main(["train", case.recipe, *case.overrides, *latent, "--out", str(folder / "run")]) == 0
    return folder / "run"


def test_a_latent_run_trains_the_codec_first_then_keeps_it(latent_run):
    weights = load_file(latent_run / "checkpoints/last/model.safetensors")
    codec = {k: v for k, v in weights.items() if "codec" in k}
    ema = load_file(latent_run / "checkpoints/last/model_ema.safetensors")
    assert codec and all(torch.equal(v, ema[k]) for k, v in codec.items())  # the sampler decodes with the same codec
    assert weights["codec.scale"].item() != 1.0  # calibrated when the flow began
    video = genlab.load(str(latent_run)).generate(n=2, prompt="a 2 and a 9")
    assert video.clips.shape == (2, 20, 16, 16)


def test_a_latent_run_predicts_from_the_given_frames(latent_run, tmp_path):
    from genlab.data import load_image_dataset
    from genlab.data.moving_mnist import MovingMNIST

    clip = MovingMNIST(load_image_dataset("mnist", str(latent_run.parent / "tiny-mnist")), "test").clip(0).frames[0]
    np.save(tmp_path / "first10.npy", clip[:10])
    out = tmp_path / "p.npy"
    assert (
        main(
            [
                "generate",
                str(latent_run),
                "--mode",
                "predict",
                "--input",
                str(tmp_path / "first10.npy"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    given = to_pixels(to_model(clip[None, :10], 16)).numpy()
    assert np.allclose(np.load(out)[:, :10], given, atol=1e-5)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.layout=stacked", "model.latent=2"], "train.codec_steps"),
        (["model.latent=2", "train.codec_steps=3"], "factorised works on pixels"),  # the factorised recipe
    ],
)
def test_codec_steps_and_latent_go_together_on_the_stacked_layout(tmp_path, capsys, overrides, message):
    case = tiny_run(tmp_path)
    assert main(["train", case.recipe, *case.overrides, *overrides, "--out", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "r").exists()
