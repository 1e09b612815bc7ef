"""Houlsby bottleneck adapters (Houlsby et al. 2019) and "freeze the lower layers" fine-tuning.

An adapter h -> h + up(act(down(h))) sits on the output of each block's attention and MLP
sublayer, after their output projection and before the residual add, as in the paper. The
up-projection starts at zero, so a model with fresh adapters computes exactly what its base did.

Adapters are attached with forward hooks rather than wrapper modules: a wrapper would rename every
base parameter (`blocks.0.attn.qkv.weight` -> `blocks.0.attn.inner.qkv.weight`), so base checkpoints
and LoRA target names would stop matching. Each adapter is a child of its sublayer
(`blocks.0.attn.adapter.down.weight`), so it is saved, moved and copied with the model.
"""

from __future__ import annotations

import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.models.transformer import Transformer

ADAPTER = "adapter"  # the child name an adapted sublayer holds its adapter under


class BottleneckAdapter(nn.Module):
    def __init__(self, n_embd: int, bottleneck: int):
        super().__init__()
        self.down = nn.Linear(n_embd, bottleneck)
        self.up = nn.Linear(bottleneck, n_embd)
        nn.init.zeros_(self.up.weight)  # starts as the identity: fine-tuning begins at the base model
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(nn.functional.gelu(self.down(h)))  # (B, T, C)


def _adapter_hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    return getattr(module, ADAPTER)(output)  # (B, T, C): the attention's or the MLP's output


def add_adapters(model: Transformer, bottleneck: int = 64, train_layer_norms: bool = True) -> Transformer:
    """Insert adapters after every attention and MLP sublayer and freeze everything else (in place).

    Houlsby et al. also train the LayerNorms (a few parameters each; RMSNorms likewise);
    `train_layer_norms=False` doesn't.
    """
    if bottleneck < 1:
        raise GenlabError(f"adapter bottleneck must be positive, got {bottleneck}")
    if any(isinstance(m, BottleneckAdapter) for m in model.modules()):
        raise GenlabError("the model already has adapters")
    model.requires_grad_(False)
    for block in model.blocks:
        for sublayer in (block.attn, block.mlp):
            weight = sublayer.proj.weight
            adapter = BottleneckAdapter(model.config.n_embd, bottleneck).to(weight.device, weight.dtype)
            sublayer.add_module(ADAPTER, adapter)
            sublayer.register_forward_hook(_adapter_hook)
    if train_layer_norms:
        for m in model.modules():
            if isinstance(m, (nn.LayerNorm, nn.RMSNorm)):  # the modern layout's norms as well
                m.requires_grad_(True)
    return model


def freeze_lower_layers(model: Transformer, k_top: int) -> Transformer:
    """Train only the top `k_top` blocks and whatever sits above them (final LayerNorm, heads).

    The embeddings count as the bottom layer and freeze too; in a GPT the output layer is tied to
    the token embedding, so a frozen GPT needs a separate task head to learn a new output.
    """
    n_layer = len(model.blocks)
    if not 0 <= k_top <= n_layer:
        raise GenlabError(f"k_top must be between 0 and n_layer ({n_layer}), got {k_top}")
    bottom = ("tok_emb.", "pos_emb.", "type_emb.", "ln_emb.") + tuple(f"blocks.{i}." for i in range(n_layer - k_top))
    for name, p in model.named_parameters():
        p.requires_grad_(not name.startswith(bottom))
    return model
