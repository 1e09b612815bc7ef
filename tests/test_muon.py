"""Muon (torch.optim.Muon for hidden matrices, AdamW for the rest, genlab.core.muon): it solves a small
least-squares problem, its update is orthogonalised, and it checkpoints and follows the schedule as one."""

from __future__ import annotations

import torch
from torch import nn

from genlab.core.muon import muon_adamw
from genlab.core.optim import set_lr


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.hidden = nn.Linear(8, 8)


def test_muon_solves_least_squares():
    """min_W ||X W^T - Y||^2 for a random well-conditioned problem: Muon drives the loss down by 1000x."""
    g = torch.Generator().manual_seed(0)
    x, w_true = torch.randn(256, 16, generator=g), torch.randn(8, 16, generator=g)
    y = x @ w_true.T
    w = nn.Parameter(torch.zeros(8, 16))
    opt = torch.optim.Muon([w], lr=0.05, weight_decay=0.0)
    first = None
    for step in range(400):
        for group in opt.param_groups:  # linear decay: a constant-size orthogonal step cannot settle otherwise
            group["lr"] = 0.05 * (1 - step / 400)
        loss = ((x @ w.T - y) ** 2).mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = ((x @ w.T - y) ** 2).mean().item()
    assert final < first / 1000, (first, final)


def test_the_update_is_orthogonalised():
    """With no momentum, no decay and lr 1, one step moves a square matrix by -orth(grad): singular values near 1
    where the gradient's spread over a factor of 30. (Five Newton-Schulz steps lift directions down to about
    1/100 of the largest; weaker ones stay small, which is Muon's design, not a bug.)"""
    g = torch.Generator().manual_seed(1)
    u, _ = torch.linalg.qr(torch.randn(32, 32, generator=g))
    v, _ = torch.linalg.qr(torch.randn(32, 32, generator=g))
    grad = u @ torch.diag(torch.logspace(-1.5, 0, 32)) @ v.T
    w = nn.Parameter(torch.zeros(32, 32))
    w.grad = grad.clone()
    torch.optim.Muon([w], lr=1.0, weight_decay=0.0, momentum=0.0, nesterov=False).step()
    s = torch.linalg.svdvals(-w.detach())
    grad_s = torch.linalg.svdvals(grad)
    assert grad_s.max() / grad_s.min() > 25
    assert 0.6 < s.min() and s.max() < 1.25, s  # five quintic Newton-Schulz steps land in about [0.7, 1.2]
    assert abs(s.mean().item() - 1) < 0.15


def test_split_schedule_and_checkpoint():
    model = TwoLayer()
    opt = muon_adamw(
        model, lambda name: name.startswith("hidden."), lr=1e-3, muon_lr=0.02, betas=[0.9, 0.95], weight_decay=0.1
    )
    assert [p for g in opt.muon.param_groups for p in g["params"]] == [model.hidden.weight]
    adam_params = {id(p) for g in opt.adamw.param_groups for p in g["params"]}
    assert adam_params == {id(model.emb.weight), id(model.hidden.bias)}  # embeddings and biases stay on AdamW
    set_lr(opt, 5e-4)  # half the peak: both learning rates follow
    assert opt.muon.param_groups[0]["lr"] == 0.01
    assert all(g["lr"] == 5e-4 for g in opt.adamw.param_groups)
    model.hidden(model.emb(torch.tensor([1, 2]))).sum().backward()
    opt.step()
    again = muon_adamw(TwoLayer(), lambda name: name.startswith("hidden."), 1e-3, 0.02, [0.9, 0.95], 0.1)
    again.load_state_dict(opt.state_dict())
    assert again.state_dict()["muon"]["state"][0]["momentum_buffer"].equal(
        opt.state_dict()["muon"]["state"][0]["momentum_buffer"]
    )


def test_encoder_decoder_split():
    """An encoder-decoder names two block lists: every matrix inside them (self- and cross-attention, MLPs) is
    Muon's; the shared embedding table, the position tables, gains and biases stay on AdamW."""
    from types import SimpleNamespace

    from genlab.core.muon import block_optimizer
    from genlab.models.seq2seq import Seq2Seq, Seq2SeqConfig

    model = Seq2Seq(Seq2SeqConfig(vocab_size=50, block_size=16, n_enc_layer=1, n_dec_layer=1, n_head=2, n_embd=8))
    train = SimpleNamespace(optimizer="muon", lr=1e-3, muon_lr=0.02, betas=[0.9, 0.98], weight_decay=0.01)
    opt = block_optimizer(model, train, ("encoder", "decoder"))
    muon = {id(p) for g in opt.muon.param_groups for p in g["params"]}
    names = {n for n, p in model.named_parameters() if id(p) in muon}
    assert names == {
        n for n, p in model.named_parameters() if p.dim() == 2 and n.split(".")[0] in ("encoder", "decoder")
    }
    assert any(".cross." in n for n in names) and not any(n.startswith(("tok_emb", "enc_pos")) for n in names)
