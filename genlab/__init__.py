"""genlab: pretrain -> fine-tune -> evaluate -> generate and serve, for small generative models."""

__version__ = "0.1.0"
