"""Muon for the hidden weight matrices, AdamW for everything else, stepped as one optimiser.

Muon (Keller Jordan, 2024; the NanoGPT speedrun's optimiser) replaces each 2-D weight's momentum by the
nearest semi-orthogonal matrix (five Newton-Schulz iterations): every direction of the update gets the
same size, so rare directions learn as fast as common ones. It suits only the matrices inside the network;
embeddings, the LM head, norm gains and biases keep AdamW. PyTorch ships Muon (torch.optim.Muon, since
2.9), so genlab only splits the parameters and wraps the two optimisers so the trainer sees one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from genlab.core.optim import adamw

MUON_MOMENTUM = 0.95  # Keller Jordan's setting, with Nesterov momentum


class MuonWithAdamW:
    """torch.optim.Muon over `hidden` matrices and AdamW over `rest`, as one optimiser: step, zero_grad,
    state_dict / load_state_dict (for checkpoints) and param_groups (for the schedule, genlab.core.optim.set_lr).

    Each Muon group carries `lr_scale = muon_lr / lr`, so one schedule drives both learning rates."""

    def __init__(
        self,
        hidden: list[torch.nn.Parameter],
        rest: list[torch.nn.Parameter],
        lr: float,
        muon_lr: float,
        betas: tuple[float, float],
        weight_decay: float,
    ):
        self.muon = torch.optim.Muon(
            hidden, lr=muon_lr, weight_decay=weight_decay, momentum=MUON_MOMENTUM, nesterov=True
        )
        for group in self.muon.param_groups:
            group["lr_scale"] = muon_lr / lr
        # Weight decay only on matrices (the embeddings and head), as genlab.core.optim.adamw does.
        self.adamw = torch.optim.AdamW(
            [
                {"params": [p for p in rest if p.dim() >= 2], "weight_decay": weight_decay},
                {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0},
            ],
            lr=lr,
            betas=betas,
        )

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.muon.param_groups + self.adamw.param_groups

    def step(self) -> None:
        self.muon.step()
        self.adamw.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.muon.zero_grad(set_to_none=set_to_none)
        self.adamw.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.muon.load_state_dict(state["muon"])
        self.adamw.load_state_dict(state["adamw"])


def muon_adamw(
    model: torch.nn.Module,
    is_hidden: Callable[[str], bool],
    lr: float,
    muon_lr: float,
    betas: list[float],
    weight_decay: float,
) -> MuonWithAdamW:
    """Split the trainable parameters: 2-D ones whose name `is_hidden` says lies inside the network go to
    Muon, the rest (embeddings, head, gains, biases) to AdamW."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    hidden = [p for n, p in named if p.dim() == 2 and is_hidden(n)]
    rest = [p for n, p in named if not (p.dim() == 2 and is_hidden(n))]
    return MuonWithAdamW(hidden, rest, lr, muon_lr, (betas[0], betas[1]), weight_decay)


def block_optimizer(
    model: torch.nn.Module, t: Any, block_lists: tuple[str, ...] = ("blocks",)
) -> torch.optim.Optimizer | MuonWithAdamW:
    """The optimiser a transformer's train section (genlab.core.recipe.OptimizerChoice + AdamWSchedule) asks
    for: Muon over the weight matrices inside the module lists `block_lists` (an encoder-decoder names two),
    with the embeddings and head on AdamW; or AdamW throughout."""
    if t.optimizer == "muon":
        prefixes = tuple(f"{name}." for name in block_lists)
        return muon_adamw(model, lambda name: name.startswith(prefixes), t.lr, t.muon_lr, t.betas, t.weight_decay)
    return adamw(model, t.lr, t.betas, t.weight_decay)
