"""Datasets by name. `load_image_dataset` resolves cache -> system package -> download -> bundled."""

from genlab.data.images import SOURCES as IMAGE_DATASETS
from genlab.data.images import ImageData, image_class_names, load_image_dataset

__all__ = ["IMAGE_DATASETS", "ImageData", "image_class_names", "load_image_dataset"]
