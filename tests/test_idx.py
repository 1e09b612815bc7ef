import gzip
import struct

import numpy as np
import pytest

from genlab.data import load_image_dataset
from genlab.data.idx import parse_idx, read_idx, write_idx
from genlab.errors import GenlabError


def hand_made_idx(values: list[list[int]]) -> bytes:
    # magic: two zero bytes, 0x08 (unsigned byte), 2 dimensions; then the two sizes, big-endian
    rows, cols = len(values), len(values[0])
    return bytes([0, 0, 0x08, 2]) + struct.pack(">II", rows, cols) + bytes(v for row in values for v in row)


def test_reads_hand_made_file(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(hand_made_idx([[1, 2, 3], [250, 0, 7]]))
    np.testing.assert_array_equal(read_idx(path), [[1, 2, 3], [250, 0, 7]])


def test_reads_gzip_and_int32(tmp_path):
    labels = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3) + struct.pack(">3i", -1, 70000, 5)
    (tmp_path / "l.gz").write_bytes(gzip.compress(labels))
    np.testing.assert_array_equal(read_idx(tmp_path / "l.gz"), [-1, 70000, 5])


def test_write_read_round_trip(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), array)


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"\x01\x00\x08\x02" + struct.pack(">II", 1, 1) + b"\x00", "magic"),
        (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "magic"),
        (b"\x00\x00\x08\x02" + struct.pack(">II", 2, 2) + b"\x00\x00\x00", "promises"),
        (b"\x00\x00\x08\x02" + struct.pack(">II", 2, 2) + b"\x00" * 5, "promises"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated"),
        (b"\x00", "too short"),
    ],
)
def test_bad_idx_bytes(payload, message):
    with pytest.raises(GenlabError, match=message):
        parse_idx(payload)


def test_truncated_gzip(tmp_path):
    blob = gzip.compress(hand_made_idx([[1, 2], [3, 4]] * 100))
    (tmp_path / "t.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(GenlabError, match="corrupt or truncated gzip"):
        read_idx(tmp_path / "t.gz")


def test_corrupt_gzip(tmp_path):
    blob = bytearray(gzip.compress(hand_made_idx([[1, 2], [3, 4]] * 100)))
    blob[20:30] = b"\xff" * 10
    (tmp_path / "c.gz").write_bytes(bytes(blob))
    with pytest.raises(GenlabError, match="corrupt or truncated gzip"):
        read_idx(tmp_path / "c.gz")


def test_missing_file(tmp_path):
    with pytest.raises(GenlabError, match="cannot read"):
        read_idx(tmp_path / "nope.gz")


def test_unknown_dataset():
    with pytest.raises(GenlabError, match="unknown image dataset 'cifar'"):
        load_image_dataset("cifar")


def test_mnist_falls_back_to_shuffled_stratified_subset():
    data = load_image_dataset("mnist")
    assert "bundled" in data.source
    assert data.train_images.shape == (4000, 28, 28) and data.test_images.shape == (1000, 28, 28)
    assert np.bincount(data.test_labels).tolist() == [100] * 10
    assert len(set(data.train_labels[:50].tolist())) > 5  # shuffled, not sorted by label
    # train and test are disjoint images
    train = {img.tobytes() for img in data.train_images}
    assert not any(img.tobytes() in train for img in data.test_images)


def test_folder_with_wrong_shapes(tmp_path, tiny_idx_dir):
    for f in tiny_idx_dir.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(3, dtype=np.uint8))
    with pytest.raises(GenlabError, match="3 train labels for 256 images"):
        load_image_dataset("mnist", str(tmp_path))
