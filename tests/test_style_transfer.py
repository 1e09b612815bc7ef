"""Style transfer on glyphs (task pix2pix): rendering, the character split, the U-Net, conv LoRA, few-shot
starts and bad input — on tiny data (32x32 glyphs, a few dozen characters, three fonts)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab.cli import main
from genlab.core.distributed import DistEnv
from genlab.core.run import RunDir
from genlab.data.augment import random_affine
from genlab.data.fashion_edges import edge_map
from genlab.data.glyphs import (
    FONT_DIR,
    FONTS,
    char_order,
    gb2312_level2,
    load_glyphs,
    render_glyph,
    training_order,
)
from genlab.errors import GenlabError
from genlab.evaluation.glyph_judges import glyph_augment, glyph_judges
from genlab.io.weights import read_tensors
from genlab.models.glyph_unet import GlyphUNet, GlyphUNetConfig
from genlab.peft.conv_lora import apply_conv_lora, merge_conv_lora
from genlab.peft.methods import DELTA_WEIGHTS
from genlab.tasks import load_recipe
from genlab.tasks.pix2pix.pipeline import load_pair, translate
from genlab.tasks.pix2pix.tiny import tiny_run
from genlab.tasks.pix2pix.training import Pix2PixTraining
from tests.conftest import one_error_line

NEEDED = ["wqy-microhei", "arphic-ukai", "arphic-uming"]
missing = [FONTS[f].package for f in NEEDED if not (FONT_DIR / FONTS[f].path).is_file()]
pytestmark = pytest.mark.skipif(bool(missing), reason=f"needs the Debian packages {', '.join(missing)}")


def test_rendering_is_deterministic_and_placed_by_the_font_metrics():
    a, b = render_glyph("wqy-microhei", "永", 64), render_glyph("wqy-microhei", "永", 64)
    assert a is not None and a.dtype == np.uint8 and a.shape == (64, 64) and np.array_equal(a, b)
    cols = np.flatnonzero(a.any(axis=0))
    assert abs((cols[0] + cols[-1]) / 2 - 31.5) <= 3  # a full-width character sits in the cell's middle
    # The ideographic full stop sits low in its em square: centring by the font's metrics keeps it there,
    # where centring by its bounding box would lift it to the middle.
    stop = render_glyph("wqy-microhei", "。", 64)
    rows = np.flatnonzero(stop.any(axis=1))
    assert rows[0] > 32, rows


def test_a_character_the_font_lacks_is_detected():
    assert render_glyph("wqy-microhei", "\U0001f600", 32) is None  # no emoji in the font: its .notdef
    assert render_glyph("wqy-microhei", " ", 32) is None  # nothing drawn


def test_the_character_split_leaks_nothing_whatever_the_fonts():
    one = load_glyphs(["wqy-microhei", "arphic-ukai"], 40, size=32)
    two = load_glyphs(["wqy-microhei", "arphic-uming", "arphic-ukai"], 40, size=32)
    order = char_order()
    for glyphs in (one, two):
        test = {glyphs.chars[i] for i in glyphs.split("test")}
        train = {glyphs.chars[i] for i in glyphs.split("train")}
        assert test and train and not test & train
        assert all(order.index(c) % 8 == 0 for c in test)  # by the frequency order alone
    held_out = {c for g in (one, two) for c in (g.chars[i] for i in g.split("test"))}
    seen = {c for g in (one, two) for c in (g.chars[i] for i in g.split("train"))}
    assert not held_out & seen


@pytest.mark.parametrize("size,depth", [(32, 3), (64, 5), (32, 5)])
def test_unet_skips_join_matching_resolutions(size, depth):
    net = GlyphUNet(GlyphUNetConfig(size=size, width=4, max_width=16, depth=depth, style_dim=3, fonts=["a", "b"]))
    shapes = []
    hooks = [layer.register_forward_hook(lambda m, i, o: shapes.append(o.shape[-1])) for layer in net.down]
    hooks += [layer.register_forward_hook(lambda m, i, o: shapes.append(o.shape[-1])) for layer in net.up]
    out = net(torch.rand(3, 1, size, size), torch.tensor([0, 1, 1]))
    for hook in hooks:
        hook.remove()
    down, up = shapes[:depth], shapes[depth:]
    assert down == [size // 2 ** (i + 1) for i in range(depth)]
    assert up == list(reversed(down[:-1]))  # each decoder level meets the encoder level of its size
    assert out.shape == (3, 1, size, size) and 0 <= out.min() and out.max() <= 1


def test_conv_lora_starts_as_the_base_and_merges_to_the_same_function():
    torch.manual_seed(0)
    net = GlyphUNet(GlyphUNetConfig(size=32, width=4, depth=3, style_dim=3, fonts=["a"]))
    x, fonts = torch.rand(2, 1, 32, 32), torch.zeros(2, dtype=torch.long)
    before = net(x, fonts)
    apply_conv_lora(net, rank=2, alpha=4.0)
    assert torch.equal(net(x, fonts), before)
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    for name, p in net.named_parameters():
        if "lora_B" in name:
            p.data.normal_()
    moved = net(x, fonts)
    assert not torch.allclose(moved, before)
    assert torch.allclose(merge_conv_lora(net)(x, fonts), moved, atol=1e-5)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pix2pix")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_DATA_DIR", str(folder / "data"))
        case = tiny_run(folder)
        assert main(["train", case.recipe, *case.overrides, "--out", str(folder / "run")]) == 0
        yield case, folder


def test_training_never_sees_a_held_out_character(tiny, tmp_path):
    case, _ = tiny
    seen = {}
    for chars in ("shared", "all", "gb2312", "cjk"):
        recipe = load_recipe(case.recipe, [*case.overrides, f"data.train_chars={chars}"])
        training = Pix2PixTraining(recipe, DistEnv(), RunDir(tmp_path / chars))
        glyphs = training.glyphs
        held_out = {glyphs.chars[i] for i in glyphs.split("test")}
        named = glyphs.chars if chars == "shared" else training_order(chars)  # what the pairs' indices index
        seen[chars] = {named[i] for i in training.pairs[:, 1].tolist()}
        assert held_out and seen[chars] and not held_out & seen[chars]
        assert not set(char_order()[:: recipe.data.test_every]) & seen[chars]  # level 1's held-out, any run
    assert len(seen["all"]) > 10 * len(glyphs.chars)  # all: every character each target shares with the source
    level2 = gb2312_level2()
    assert len(level2) == len(set(level2)) == 3008 and not set(level2) & set(char_order())
    added = seen["gb2312"] - seen["all"]  # gb2312: level 1's training characters and level 2's the fonts have
    assert seen["all"] < seen["gb2312"] < seen["cjk"] and len(added) > 1000 and added <= set(level2)
    # Beyond level 1, no variant of a held-out character: 摺 is 折's traditional form, 優 优's.
    assert {"折", "优"} <= set(char_order()[:: recipe.data.test_every]) and not {"摺", "優"} & seen["cjk"]


def test_a_training_pair_moves_as_one_and_dropout_is_off_in_use():
    glyph = torch.tensor(render_glyph("wqy-microhei", "永", 32)).float().div(255)
    pair = glyph[None, None].repeat(4, 2, 1, 1)  # (4, 2, 32, 32): source and truth alike
    moved = random_affine(pair, torch.rand(4, 3, generator=torch.Generator().manual_seed(0)), 3.0, 0.1)
    assert torch.equal(moved[:, 0], moved[:, 1]) and not torch.equal(moved, pair)
    net = GlyphUNet(GlyphUNetConfig(size=32, width=4, max_width=16, depth=3, style_dim=3, fonts=["a"], dropout=0.5))
    x, fonts = torch.rand(2, 1, 32, 32), torch.zeros(2, dtype=torch.long)
    assert not torch.equal(net.train()(x, fonts), net(x, fonts))  # dropout draws in training
    assert torch.equal(net.eval()(x, fonts), net(x, fonts))


def test_a_step_with_every_lever_on_is_seeded_by_the_step(tiny, tmp_path):
    case, _ = tiny
    levers = ["model.dropout=0.5", "train.augment_shift=2", "train.augment_zoom=0.1", "train.constant_weight=15"]
    losses = []
    for _ in range(2):  # two fresh trainings take the same step: the same draws, the same losses
        training = Pix2PixTraining(load_recipe(case.recipe, [*case.overrides, *levers]), DistEnv(), RunDir(tmp_path))
        losses.append(training.train_step(torch.arange(16), step=3))
    assert losses[0] == losses[1] and losses[0]["loss/constant"] > 0


def test_few_shot_lora_start_grows_a_font_and_keeps_the_trained_ones(tiny):
    case, folder = tiny
    base, out = folder / "run", folder / "few"
    # LoRA trains without a moving average (it ships its live low-rank updates)
    settings = [o for o in case.overrides if not o.startswith(("data.targets", "data.fonts", "train.ema_decay"))]
    new = ["data.fonts=[wqy-microhei,arphic-ukai,arphic-uming,lxgw-wenkai]", "data.targets=[lxgw-wenkai]"]
    assert main(["train", case.recipe, *settings, *new, "data.shots=16", f"train.init={base}",
                 "train.method=lora", "--out", str(out)]) == 0  # fmt: skip
    grown, start = genlab.load(out), genlab.load(base)
    assert grown.class_names == ["arphic-ukai", "arphic-uming", "lxgw-wenkai"]
    meta = json.loads((out / "checkpoints" / "last" / "meta.json").read_text())
    assert meta["lora"] == {"rank": 4, "alpha": 8.0}
    # only the new font's style vector was in any batch: the trained fonts' vectors did not move
    assert torch.equal(grown.generator.style.weight[:2], start.generator.style.weight)
    assert not torch.equal(grown.generator.down[1][0].weight, start.generator.down[1][0].weight)  # LoRA merged in
    assert grown.generate(text="生 成").images.shape == (1, 1, 32, 96)  # one line of three cells
    # What the LoRA run ships: the factors and the style vectors (a small delta) on a reference to its start,
    # and the generator rebuilt from them draws exactly what the checkpoint's does.
    delta = read_tensors(out / "adapter" / DELTA_WEIGHTS)
    assert delta and all("lora_" in name or name == "style.weight" for name in delta)
    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert config["init"] == str(base) and config["rank"] == 4
    full = (out / "checkpoints" / "last" / "generator.safetensors").stat().st_size
    assert (out / "adapter" / DELTA_WEIGHTS).stat().st_size < full / 3
    source, fonts = torch.rand(4, 1, 32, 32), torch.tensor([0, 1, 2, 2])
    checkpoint = load_pair(RunDir(out))[0]
    assert torch.equal(translate(grown.generator, source, fonts), translate(checkpoint, source, fonts))


def test_the_run_draws_with_its_generators_moving_average(tiny):
    case, folder = tiny
    averaged, live = load_pair(RunDir(folder / "run"))[0], load_pair(RunDir(folder / "run"), live=True)[0]
    source, fonts = torch.rand(4, 1, 32, 32), torch.tensor([0, 1, 0, 1])
    drawn = translate(genlab.load(folder / "run").generator, source, fonts)
    assert torch.equal(drawn, translate(averaged, source, fonts))
    assert not torch.equal(drawn, translate(live, source, fonts))
    with pytest.raises(GenlabError, match="ema_decay is for full training"):
        load_recipe(case.recipe, [*case.overrides, f"train.init={folder / 'run'}", "train.method=lora"])


def test_lr_decays_linearly_to_zero_after_decay_from(tiny, tmp_path):
    case, _ = tiny
    training = Pix2PixTraining(load_recipe(case.recipe, [*case.overrides, "train.decay_from=0.5"]), DistEnv(),
                               RunDir(tmp_path))  # fmt: skip
    lrs = []
    for step in (0, training.total_steps // 2 - 1, training.total_steps - 1):
        training._set_learning_rates(step)
        lrs.append(training.optimizers["generator"].param_groups[0]["lr"])
    assert lrs[0] == lrs[1] == 2e-4 and 0 < lrs[2] < 2e-4 / training.total_steps * 2.5


def test_judge_augmentation_keeps_glyphs_legible_and_is_seeded():
    x = torch.tensor(render_glyph("wqy-microhei", "永", 64)).float().div(255)[None, None].repeat(8, 1, 1, 1)
    a = glyph_augment(x, torch.Generator().manual_seed(1), reshape=True)
    b = glyph_augment(x, torch.Generator().manual_seed(1), reshape=True)
    assert torch.equal(a, b) and a.shape == x.shape and 0 <= a.min() and a.max() <= 1
    assert not torch.equal(a, x) and (a - x).abs().mean() < 0.2  # changed, but still mostly the same ink


def test_judges_are_the_same_whatever_the_thread_count(tmp_path, monkeypatch):
    glyphs = load_glyphs(["wqy-microhei", "arphic-ukai"], 128)
    weights, before = [], torch.get_num_threads()
    try:
        for count in (2, 1):  # a fresh cache each time: the judges are trained, not read back
            monkeypatch.setenv("GENLAB_DATA_DIR", str(tmp_path / str(count)))
            torch.set_num_threads(count)
            weights.append(glyph_judges(glyphs, epochs=1).char.state_dict())
            assert torch.get_num_threads() == count  # the caller's count is restored
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_evaluation_reports_the_judges_reading_real_glyphs_and_an_unseen_font(tiny):
    _, folder = tiny
    assert main(["eval", str(folder / "run")]) == 0
    scores = json.loads((folder / "run" / "report.json").read_text())["translation"]
    judges = scores["judges"]
    assert set(judges["char_accuracy_real"]) == {"wqy-microhei", "arphic-ukai", "arphic-uming"}
    assert judges["unseen_font"] == "arphic-uming" and 0 <= judges["char_accuracy_unseen_font"] <= 1
    assert 0 <= scores["char_accuracy"] <= 1 and scores["copy_source"]["font_accuracy"] <= 1


def test_edge_maps_outline_an_item():
    square = torch.zeros(1, 1, 12, 12)
    square[..., 3:9, 3:9] = 1
    edges = edge_map(square)
    assert edges[0, 0, 5, 5] == 0 and edges[0, 0, 0, 0] == 0  # inside and far outside: no edge
    assert edges[0, 0, 3, 5] == 1 and edges[0, 0, 2, 5] == 1  # both sides of the border
    assert set(edges.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="needs dataset-fashion-mnist")
def test_fashion_edges_to_items_trains_and_scores_against_its_baselines(tmp_path):
    settings = ["data.num_chars=64", "model.width=4", "model.depth=3", "model.style_dim=2", "discriminator.width=4",
                "train.epochs=1", "data.batch_size=16", "train.progress=false"]  # fmt: skip
    assert main(["train", "fashion-edges", *settings, "--out", str(tmp_path / "run")]) == 0
    assert main(["eval", str(tmp_path / "run")]) == 0
    scores = json.loads((tmp_path / "run" / "report.json").read_text())["translation"]
    assert scores["test_chars"] == 8 and {"copy_source", "mean_target"} <= set(scores)
    assert all(0 <= s["l1"] <= 1 and -1 <= s["ssim"] <= 1 for s in (scores, scores["copy_source"]))
    made = genlab.load(tmp_path / "run").generate(n=3).images
    assert made.shape == (3, 1, 32, 32)
    assert main(["generate", str(tmp_path / "run"), "--text", "生", "--out", str(tmp_path / "x.png")]) == 2
    assert main(["train", "fashion-edges", "data.targets=[cwtex-kai]", "--out", str(tmp_path / "bad")]) == 2


def test_bad_input_is_one_line_and_exit_2(tiny, capsys, tmp_path):
    case, folder = tiny
    run = str(folder / "run")
    for args, message in [
        (["--text", "生\U0001f600"], "has no glyph for"),
        (["--text", "生", "--font", "no-such-font"], "not 'no-such-font'"),
        (["--text", "  "], "--text is empty"),
        (["--input", str(tmp_path / "none.png")], "no such file"),
    ]:
        assert main(["generate", run, *args, "--out", str(tmp_path / "x.png")]) == 2
        one_error_line(capsys, message)
        assert not (tmp_path / "x.png").exists()
    assert main(["train", "zi2zi-fonts", "data.targets=[comic-sans]", "--out", str(tmp_path / "r")]) == 2
    one_error_line(capsys, "unknown font comic-sans")
    for recipe, chars in (("zi2zi-fonts", "everything"), ("fashion-edges", "cjk")):
        assert main(["train", recipe, f"data.train_chars={chars}", "--out", str(tmp_path / chars)]) == 2
        one_error_line(capsys, "data.train_chars must be shared, all, gb2312 or cjk")
        assert not (tmp_path / chars).exists()


def test_a_glyph_image_is_translated(tiny, tmp_path):
    _, folder = tiny
    picture = 255 - render_glyph("wqy-microhei", "生", 64)
    Image.fromarray(picture).save(tmp_path / "glyph.png")
    made = genlab.load(folder / "run").generate(input=str(tmp_path / "glyph.png"), font="arphic-ukai")
    assert made.images.shape == (1, 1, 32, 32)


def test_served_text_becomes_one_styled_line(tiny):
    import base64
    import io

    from fastapi.testclient import TestClient

    from genlab.serve import create_app

    _, folder = tiny
    with TestClient(create_app({"run": genlab.load(folder / "run")})) as client:
        body = {"model": "run", "text": "生成式", "label": "arphic-uming"}
        response = client.post("/v1/images/generations", json=body)
        assert response.status_code == 200, response.text
        (line,) = response.json()["data"]
        assert Image.open(io.BytesIO(base64.b64decode(line["b64_json"]))).size == (96, 32)
        response = client.post("/v1/images/generations", json={"model": "run", "text": "\U0001f600"})
        assert response.status_code == 422 and "has no glyph" in response.text
