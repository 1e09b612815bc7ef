"""The colour set of the image-token tasks on tiny data: emoji drawn in colour from the Debian font, named
by Unicode; a colour VQGAN's shapes and the image checks it makes; colour grids; name captions split by
emoji. Tests that need the font skip, naming its package, where it is not installed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageFont

from genlab.data import ImageData
from genlab.data.emoji import BITMAP_SIZE, FONT, PACKAGE, font_path, render
from genlab.errors import GenlabError
from genlab.io.images import GeneratedImages, make_grid
from genlab.models.vqgan import VQGAN, VQGANConfig
from genlab.tasks.flow.text import CaptionBank
from genlab.tasks.vq_dalle.captions import CaptionTokenizer, caption_set
from genlab.tasks.vqgan.handle import read_input
from genlab.tasks.vqgan.training import check_image_shape

needs_font = pytest.mark.skipif(not FONT.is_file(), reason=f"needs Debian {PACKAGE} ({FONT})")
COLOUR = VQGANConfig(width=16, code_dim=4, codebook_size=16, channels=3, image_size=32)


@needs_font
def test_emoji_are_drawn_in_colour():
    font = ImageFont.truetype(str(FONT), BITMAP_SIZE)
    red, green = (render(c, font).astype(float) for c in ("\N{RED APPLE}", "\N{GREEN APPLE}"))
    assert red.shape == (32, 32, 3) and red.min() < 50 and red.max() == 255  # ink on a white ground
    ink = [(image.sum(-1) < 600) for image in (red, green)]
    assert red[ink[0]][:, 0].mean() > red[ink[0]][:, 1].mean() + 60  # the red apple is red
    assert green[ink[1]][:, 1].mean() > green[ink[1]][:, 0].mean() + 20  # the green one green


def test_a_missing_emoji_font_is_one_line_naming_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("GENLAB_EMOJI_FONT", str(tmp_path / "none.ttf"))
    with pytest.raises(GenlabError, match=f"apt-get install {PACKAGE}"):
        font_path()


def test_a_colour_vqgan_encodes_64_tokens_and_decodes_colour():
    torch.manual_seed(0)
    model = VQGAN(COLOUR)
    images = torch.rand(4, 3, 32, 32)
    model(images)  # k-means initialisation
    ids = model.eval().encode(images)
    assert ids.shape == (4, 64) and model.decode(ids).shape == (4, 3, 32, 32)
    with pytest.raises(GenlabError, match="set model.channels=1 model.image_size=28"):
        check_image_shape(torch.rand(2, 1, 28, 28), COLOUR, "fashion-mnist")
    with pytest.raises(ValueError, match="image_size"):
        VQGANConfig(image_size=30)


def test_colour_grids_and_arrays_keep_their_channels():
    images = torch.zeros(3, 3, 8, 8)
    images[:, 0] = 1  # red
    grid = make_grid(images, nrow=3)
    assert grid.shape == (12, 32, 3) and tuple(grid[2, 2]) == (255, 0, 0)
    assert GeneratedImages(images).numpy().shape == (3, 8, 8, 3)
    assert make_grid(torch.zeros(2, 1, 8, 8)).ndim == 2  # greyscale stays one channel


@pytest.mark.parametrize(("size", "mode", "message"), [((32, 32), "L", "32x32 L image"), ((28, 28), "RGB", "28x28")])
def test_a_colour_vqgan_refuses_an_input_of_another_size_or_mode(tmp_path, size, mode, message):
    path = tmp_path / "in.png"
    Image.new(mode, size).save(path)
    with pytest.raises(GenlabError, match=message):
        read_input(str(path), COLOUR)
    Image.new("RGB", (32, 32), (255, 0, 0)).save(path)
    assert read_input(str(path), COLOUR)[0, :, 0, 0].tolist() == [1.0, 0.0, 0.0]


def test_named_classes_train_on_training_names_and_hold_out_test_names():
    names = ("RED APPLE", "GREEN APPLE", "BLUE HEART", "CAT", "DOG FACE")
    pixels = np.zeros((5, 32, 32, 3), dtype=np.uint8)
    train, test = np.array([0, 1, 2, 4]), np.array([3])
    data = ImageData("emoji", "test", names, pixels[train], train, pixels[test], test)
    texts, labels = caption_set(data, held_out=False)
    assert texts == ["red apple", "green apple", "blue heart", "dog face"] and labels.tolist() == [0, 1, 2, 4]
    assert caption_set(data, held_out=True)[0] == ["cat"]
    tokenizer = CaptionTokenizer.from_captions(texts, 16, 4)
    bank = CaptionBank(texts, labels, tokenizer)
    cycled, rows = bank.cycle(5)  # classes without a training caption (3, the test emoji) are skipped
    assert cycled.tolist() == [0, 1, 2, 4, 0] and torch.equal(rows[3], tokenizer.encode("dog face"))
    assert data.tensors("train")[0].shape == (4, 3, 32, 32)
