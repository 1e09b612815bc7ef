"""Datasets by name. `load_image_dataset` resolves cache -> system package -> download -> bundled."""

from genlab.data.image_sets import image_class_names, load_image_dataset
from genlab.data.images import SOURCES as IMAGE_DATASETS
from genlab.data.images import ImageData

__all__ = ["IMAGE_DATASETS", "ImageData", "image_class_names", "load_image_dataset"]
