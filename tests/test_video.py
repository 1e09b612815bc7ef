"""The video task's own checks: Moving MNIST's physics, the three uses' masks, the network and sampler,
GIF / MP4 round trips, the digit reader, and bad input through the CLI (one line, exit 2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab.cli import main
from genlab.data import load_image_dataset
from genlab.data.moving_mnist import FRAME, FRAMES, STEP, MovingMNIST, prompt_digits
from genlab.errors import GenlabError
from genlab.evaluation import video_eval
from genlab.evaluation.classifier import load_evaluator
from genlab.evaluation.pair_reader import PAIRS, load_pair_reader, pair_index, read_pairs
from genlab.io.video import GeneratedVideo, read_video
from genlab.models.video_unet import LAYOUTS, VideoUNetConfig
from genlab.tasks.video.pipeline import to_model, to_pixels, video_network
from genlab.tasks.video.process import masked_flow_loss, mode_mask, sample_clips, training_masks
from genlab.tasks.video.tiny import tiny_run
from tests.conftest import one_error_line


@pytest.fixture(scope="module")
def mnist():
    return load_image_dataset("mnist")


@pytest.fixture(scope="module")
def clips(mnist):
    return MovingMNIST(mnist, "test", seed=3).batch(range(64))


def test_digits_stay_inside_move_at_constant_speed_and_bounce(clips):
    free = FRAME - 28
    assert clips.frames.shape == (64, FRAMES, FRAME, FRAME) and clips.frames.dtype == np.uint8
    assert clips.positions.min() >= 0 and clips.positions.max() <= free
    steps = np.diff(clips.positions.astype(float), axis=1)  # (N, T-1, 2, 2)
    bounced = np.sign(steps[:, 1:]) * np.sign(steps[:, :-1]) < 0  # a coordinate turned back
    assert bounced.any()  # digits do hit the walls
    speed = np.linalg.norm(steps, axis=-1)
    away = (clips.positions[:, 1:] > 1).all(-1) & (clips.positions[:, 1:] < free - 1).all(-1)
    away &= (clips.positions[:, :-1] > 1).all(-1) & (clips.positions[:, :-1] < free - 1).all(-1)
    # whole-pixel positions of a path moving STEP * free = 3.6 px a frame
    assert abs(speed[away].mean() - STEP * free) < 0.2 and speed[away].max() < STEP * free + 1.5


def test_a_wall_reflects_the_velocity():
    from genlab.data.moving_mnist import trajectory

    for seed in range(20):
        path, _ = trajectory(np.random.default_rng(seed))
        steps = np.diff(path, axis=0)
        for i in range(1, len(steps)):
            for axis in range(2):
                if steps[i, axis] * steps[i - 1, axis] < 0:  # turned back: only at a wall
                    assert path[i, axis] in (0, FRAME - 28)


def test_clips_are_deterministic_and_split_by_digits(mnist):
    a, b = MovingMNIST(mnist, "train", seed=1), MovingMNIST(mnist, "train", seed=1)
    assert np.array_equal(a.clip(5).frames, b.clip(5).frames)
    assert not np.array_equal(a.clip(5).frames, a.clip(6).frames)
    assert not np.array_equal(a.clip(5).frames, MovingMNIST(mnist, "train", seed=2).clip(5).frames)
    assert MovingMNIST(mnist, "test").images is mnist.test_images  # held-out clips use held-out digits


def test_prompts_name_two_digits():
    assert prompt_digits("a 2 and a 9") == (2, 9)
    assert prompt_digits("Seven and three") == (7, 3)
    for bad in ("a 2 and a x", "a 2", "1 2 3", "a 12 and a 3"):
        with pytest.raises(GenlabError):
            prompt_digits(bad)


def test_masks_of_the_three_uses():
    assert mode_mask("predict", 20, 10).tolist() == [1.0] * 10 + [0.0] * 10
    assert mode_mask("between", 20, 10).tolist() == [1.0] + [0.0] * 18 + [1.0]
    assert mode_mask("generate", 20, 10).sum() == 0
    with pytest.raises(GenlabError, match="--mode"):
        mode_mask("rewind", 20, 10)
    masks = training_masks(6, 20, 10, torch.Generator().manual_seed(0))
    assert sorted(masks.sum(1).tolist()) == [0, 0, 2, 2, 10, 10]  # a third of each use
    only = training_masks(4, 20, 10, torch.Generator().manual_seed(0), ("predict",))
    assert only.sum(1).tolist() == [10] * 4  # train.uses: [predict] trains prediction alone


@pytest.mark.parametrize("layout", LAYOUTS)
def test_network_shapes_loss_ignores_given_frames_and_sampler_keeps_them(layout):
    torch.manual_seed(0)
    net = video_network(VideoUNetConfig(frames=6, size=16, width=16, layout=layout))
    x1 = torch.rand(2, 6, 16, 16) * 2 - 1
    mask = torch.stack([mode_mask("predict", 6, 3), mode_mask("between", 6, 3)])
    digits = torch.tensor([[2, 9], [0, 1]])
    assert net(x1, mask, torch.rand(2), digits).shape == x1.shape
    loss = masked_flow_loss(net, x1, mask, digits, torch.Generator().manual_seed(0), 0.2)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    with torch.no_grad():
        out = sample_clips(net, torch.randn(2, 6, 16, 16), x1, mask, digits, steps=3, guidance=2.0)
    given = mask.bool()
    assert torch.allclose(out[given], x1[given], atol=1e-6) and out.shape == x1.shape


def test_gif_and_mp4_are_written_and_read_back_with_every_frame(tmp_path):
    video = GeneratedVideo(torch.rand(2, FRAMES, 32, 32))
    for suffix in (".gif", ".mp4"):
        frames = read_video(video.save(tmp_path / f"clip{suffix}"))
        assert frames.shape[0] == FRAMES and frames.shape[1] % 16 == 0 and frames.shape[2] % 16 == 0
    assert Image.open(video.save(tmp_path / "strip.png")).size[0] > 20 * 32
    assert np.load(video.save(tmp_path / "clips.npy")).shape == (2, FRAMES, 32, 32)
    with pytest.raises(GenlabError, match="must end in"):
        video.save(tmp_path / "clip.avi")


def test_factorised_network_shares_its_weights_over_frames_and_frames_reach_each_other():
    def network(frames: int):
        return video_network(VideoUNetConfig(frames=frames, size=16, width=16, layout="factorised"))

    sizes = {t: sum(p.numel() for p in network(t).parameters()) for t in (6, 20)}
    assert sizes[20] - sizes[6] == 14 * 4 * 16  # only the frame-index embedding (4 * width) grows with T
    torch.manual_seed(0)
    net = network(6).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.1)
        x, mask, t = torch.rand(2, 6, 16, 16), mode_mask("between", 6, 3).expand(2, -1), torch.rand(2)
        moved = x.clone()
        moved[:, 0] = moved[:, 0].roll(4, dims=-1)  # only the first frame changes
        out, out_moved = net(x, mask, t), net(moved, mask, t)
        assert (out_moved[:, -1] - out[:, -1]).abs().max() > 1e-5  # the last frame sees the first (0 if it did not)


def test_a_wider_stem_shows_each_frame_its_neighbours_and_no_further():
    torch.manual_seed(0)
    x, mask, t = torch.rand(2, 6, 16, 16), torch.zeros(2, 6), torch.rand(2)
    moved = x.clone()
    moved[:, 0] = moved[:, 0].roll(4, dims=-1)  # only the first frame changes
    changed = {}
    for k in (1, 3):
        net = video_network(VideoUNetConfig(frames=6, size=16, width=16, layout="factorised", stem_frames=k)).eval()
        with torch.no_grad():
            net.out.weight.normal_(0, 0.1)  # the layers across time start as the identity: frames apart
            changed[k] = [(net(moved, mask, t) - net(x, mask, t))[:, f].abs().max().item() for f in (1, 2)]
    assert changed[1] == [0.0, 0.0]  # alone, a frame sees only itself
    assert changed[3][0] > 1e-5 and changed[3][1] == 0.0  # k = 3: its neighbours, not the frame after them
    for bad in ({"stem_frames": 2, "layout": "factorised"}, {"stem_frames": 3, "layout": "stacked"}):
        with pytest.raises(ValueError, match="stem_frames"):
            VideoUNetConfig(**bad)


def test_pair_reader_reads_real_held_out_clips(clips):
    """The shipped pair reader, on clips of MNIST test digits it never saw; the tracker finds their speed."""
    frames = to_pixels(to_model(clips.frames, 32))
    probs, features = read_pairs(load_pair_reader(), frames)
    assert probs.shape == (64, FRAMES, len(PAIRS)) and features.shape[0] == 64 * FRAMES
    scores = video_eval.pair_scores(probs, torch.from_numpy(clips.digits))
    assert scores["pair_accuracy"] > 0.85 and scores["clip_accuracy"] > 0.9
    located = video_eval.digit_windows(frames, load_evaluator("mnist"))
    assert video_eval.ssim(frames, frames).min() > 0.999
    assert video_eval.motion(located["centroids"], 32)["speed"] == pytest.approx(1.8, abs=0.25)  # 3.6 px at 64


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("video")
    case = tiny_run(folder)
    assert main(["train", case.recipe, *case.overrides, "--out", str(folder / "run")]) == 0
    clip = MovingMNIST(load_image_dataset("mnist", str(folder / "tiny-mnist")), "test").clip(0).frames[0]
    np.save(folder / "first10.npy", clip[:10])
    np.save(folder / "first5.npy", clip[:5])
    Image.fromarray(clip[0]).save(folder / "a.png")
    Image.fromarray(clip[-1]).save(folder / "b.png")
    Image.fromarray(clip[0, :50, :50]).save(folder / "small.png")
    return folder


def test_the_three_uses_through_the_cli(tiny, capsys):
    run = str(tiny / "run")
    assert main(["generate", run, "--prompt", "a 2 and a 9", "--out", str(tiny / "g.mp4")]) == 0
    assert (
        main(["generate", run, "--mode", "predict", "--input", str(tiny / "first10.npy"), "--out", str(tiny / "p.npy")])
        == 0
    )
    predicted = np.load(tiny / "p.npy")
    given = to_pixels(to_model(np.load(tiny / "first10.npy")[None], 16)).numpy()
    assert predicted.shape == (1, FRAMES, 16, 16) and np.allclose(predicted[:, :10], given, atol=1e-5)
    args = ["--mode", "between", "--input", str(tiny / "a.png"), "--input", str(tiny / "b.png")]
    assert main(["generate", run, *args, "--out", str(tiny / "b.gif")]) == 0
    assert read_video(tiny / "b.gif").shape[0] == FRAMES
    video = genlab.load(run).generate(mode="between", input=[str(tiny / "a.png"), str(tiny / "b.png")])
    assert len(video) == 1


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.uses=[predict,fly]", "train.uses must name distinct uses"),
        ("train.uses=[predict,predict]", "train.uses must name distinct uses"),
        ("model.stem_frames=2", "model.stem_frames must be odd"),
    ],
)
def test_bad_training_keys_are_one_line_and_write_nothing(tmp_path, capsys, override, message):
    case = tiny_run(tmp_path)
    assert main(["train", case.recipe, *case.overrides, override, "--out", str(tmp_path / "r")]) == 2
    assert message in one_error_line(capsys) and not (tmp_path / "r").exists()


def test_a_stacked_run_trains_and_generates(tmp_path):
    case = tiny_run(tmp_path)
    run = tmp_path / "run"
    assert main(["train", case.recipe, *case.overrides, "model.layout=stacked", "--out", str(run)]) == 0
    video = genlab.load(str(run)).generate(prompt="a 2 and a 9", n=2, seed=0)
    assert video.clips.shape == (2, FRAMES, 16, 16) and torch.isfinite(video.clips).all()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mode", "between", "--input", "{t}/a.png", "--input", "{t}/small.png"], "must be 64x64"),
        (["--mode", "predict", "--input", "{t}/first5.npy"], "5 frames; prediction needs the first 10"),
        (["--prompt", "a 2 and a 11"], "'11' is not a digit"),
        (["--mode", "between", "--input", "{t}/a.png"], "two --input images"),
        (["--mode", "predict", "--input", "{t}/first10.npy", "--prompt", "a 1 and a 2"], "--prompt and --label"),
        (["--mode", "sideways"], "--mode must be one of"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny, capsys, args, message):
    out = tiny / "bad.gif"
    capsys.readouterr()
    assert main(["generate", str(tiny / "run"), *[a.format(t=tiny) for a in args], "--out", str(out)]) == 2
    assert message in one_error_line(capsys) and not out.exists()


def test_pairs_are_unordered_and_scores_count_frames_and_clips():
    assert len(PAIRS) == 55 and pair_index(torch.tensor([2, 9])) == pair_index(torch.tensor([9, 2]))
    assert sorted(pair_index(torch.tensor(PAIRS)).tolist()) == list(range(55))
    asked = torch.tensor([[9, 2], [4, 4]])
    probs = np.full((2, 20, 55), 0.01)
    probs[0, :18, pair_index(asked[0])] = 0.9  # clip 0: 18 of 20 frames read right
    probs[0, 18:, 0] = 0.9
    probs[1, :, pair_index(asked[1])] = 0.3  # clip 1: no frame's top class, but the clip's
    probs[1, :10, 1], probs[1, 10:, 2] = 0.6, 0.6
    scores = video_eval.pair_scores(probs, asked)
    assert scores["pair_accuracy"] == pytest.approx(18 / 40) and scores["clip_accuracy"] == 1.0


def test_velocity_towards_the_predicted_clip_stays_finite_at_the_end():
    from genlab.tasks.video.process import velocity

    x, clean = torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4)
    v = velocity(clean, x, torch.tensor([0.0, 1.0]))
    assert torch.isfinite(v).all() and v[0].eq(1).all() and v[1].eq(20).all()  # 1 / (1 - t), 1 - t >= 0.05
