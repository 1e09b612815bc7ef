"""File formats and safe writes: atomic files, safetensors folders, tokenizers, images, audio. Knows no model."""
