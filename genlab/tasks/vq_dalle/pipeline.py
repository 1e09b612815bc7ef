"""From a request to images: the VQGAN run that tokenizes, caption prefixes, batches of guided sampling,
and the tokens decoded back to pixels."""

from __future__ import annotations

from pathlib import Path

import torch

from genlab.core.recipe import from_dict
from genlab.core.run import RunDir
from genlab.errors import GenlabError
from genlab.models.transformer import Transformer
from genlab.models.vqgan import VQGAN
from genlab.tasks.vq_dalle.captions import CaptionTokenizer
from genlab.tasks.vq_dalle.process import sample_tokens
from genlab.tasks.vqgan.handle import VQGANRun
from genlab.tasks.vqgan.pipeline import detokenize
from genlab.tasks.vqgan.recipe import VQGANRecipe


def open_tokenizer(path: str, dataset: str) -> VQGAN:
    """The VQGAN (eval mode, frozen) of the `task: vqgan` run at `path`, trained on `dataset`."""
    run = RunDir(Path(path).expanduser())
    if not run.config_path.is_file():
        raise GenlabError(
            f"data.tokenizer {path}: not a genlab run directory; train the VQGAN first "
            "(genlab train vqgan-fashion) and point data.tokenizer at its run"
        )
    config = run.read_config()
    if config.get("task") != "vqgan":
        raise GenlabError(f"data.tokenizer {path}: a '{config.get('task')}' run, not a VQGAN (task: vqgan)")
    recipe = from_dict(VQGANRecipe, config)
    if recipe.data.name != dataset:
        raise GenlabError(f"data.tokenizer {path}: a VQGAN of {recipe.data.name}, not of {dataset}")
    return VQGANRun(run, recipe, "last").model.requires_grad_(False)


def prefixes(captions: torch.Tensor, tokenizer: CaptionTokenizer) -> torch.Tensor:
    """caption rows (B, Lc) -> sequence prefixes (B, Lc + 1): the caption, then <image>."""
    return torch.cat([captions, torch.full((captions.size(0), 1), tokenizer.image)], dim=1)


@torch.no_grad()
def draw(
    model: Transformer,
    vqgan: VQGAN,
    tokenizer: CaptionTokenizer,
    captions: torch.Tensor,
    seed: int,
    guidance: float,
    temperature: float,
    top_k: int | None,
    batch_size: int = 1000,
) -> torch.Tensor:
    """Images (n, C, S, S) in [0, 1] for caption rows (n, Lc): tokens drawn batch by batch from one
    generator seeded by `seed`, decoded by the VQGAN."""
    device = model.tok_emb.weight.device
    generator = torch.Generator(device=device).manual_seed(seed)
    null = prefixes(tokenizer.null_caption()[None], tokenizer)[0].to(device)
    K, T = vqgan.config.codebook_size, vqgan.config.tokens
    ids = [
        sample_tokens(
            model, prefixes(captions[i : i + batch_size], tokenizer).to(device), null, T, K,
            guidance, temperature, top_k, generator,
        ).cpu()
        for i in range(0, len(captions), batch_size)
    ]  # fmt: skip
    return detokenize(vqgan, torch.cat(ids), batch_size)
