"""File formats and safe writes: atomic files, safetensors folders, tokenizers, Hugging Face layouts, images."""
