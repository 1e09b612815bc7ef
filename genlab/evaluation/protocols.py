"""Evaluation protocols: ways of scoring that any suitable run can use, `genlab eval RUN --protocol NAME`.

A task's own `evaluate` scores a run the way its training intended (test-set F1, FID, ...). A protocol asks
another question of any run that offers what it needs — zero-shot classification by a language model's label
likelihoods, accuracy of a classifier under noisy input — through the run's serving endpoint alone:
a "completions" run gives `handle.text_decoding()` (a causal transformer, its tokenizer and prompt encoder),
a "classifications" run `handle.classify(texts)` and `handle.class_names`. So a protocol never names a task.

`PROTOCOLS` below is the one list of them; each module of evaluation/ that defines one exports `PROTOCOL`.
"""

from __future__ import annotations

from genlab.errors import GenlabError
from genlab.evaluation import fewshot, noise, zeroshot
from genlab.evaluation.eval_protocol import EvalProtocol  # each protocol module builds one

__all__ = ["PROTOCOLS", "EvalProtocol", "get_protocol"]

PROTOCOLS: dict[str, EvalProtocol] = {
    protocol.name: protocol for protocol in (noise.PROTOCOL, zeroshot.PROTOCOL, fewshot.PROTOCOL)
}


def get_protocol(name: str) -> EvalProtocol:
    if name not in PROTOCOLS:
        known = ", ".join(f"{p.name} ({'/'.join(p.endpoints)} runs)" for p in PROTOCOLS.values()) or "none"
        raise GenlabError(f"unknown protocol '{name}' (known: {known})")
    return PROTOCOLS[name]
