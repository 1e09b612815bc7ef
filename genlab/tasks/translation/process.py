"""The translation process: the shared BPE vocabulary, pairs -> padded batches, the label-smoothed loss.

A target is fed to the decoder as <bos> + target and predicted as target + <eos> (teacher forcing); the
loss ignores padding and spreads `label_smoothing` of each token's probability mass over the vocabulary,
which keeps the model from becoming over-confident on a small corpus and helps beam search.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from genlab.data.parallel import Pair
from genlab.data.text import text_cache_dir
from genlab.errors import GenlabError
from genlab.io.tokenizers import BOS, EOS, PAD, BPETokenizer, Tokenizer, build_tokenizer, load_tokenizer
from genlab.models.seq2seq import Seq2Seq, beam_search, greedy, pad_rows


def shared_tokenizer(train: list[Pair], vocab_size: int, cache_key: dict | None) -> BPETokenizer:
    """One byte-level BPE for both languages, learnt from both sides of the training pairs. With a
    `cache_key` (the Bible data: versions and books, sorted so that both directions share it) the tokenizer
    is learnt once and read back from the cache afterwards."""
    if cache_key is None:
        return build_tokenizer("bpe", [p.source for p in train] + [p.target for p in train], vocab_size)
    digest = hashlib.sha1(json.dumps(cache_key, sort_keys=True).encode()).hexdigest()[:12]
    path = text_cache_dir() / f"translation-bpe-{vocab_size}-{digest}.json"
    if path.is_file():
        return load_tokenizer(path)
    tokenizer = build_tokenizer("bpe", [p.source for p in train] + [p.target for p in train], vocab_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(path)
    return tokenizer


class Codec:
    """Texts <-> ids for one tokenizer: sources, targets, and teacher-forcing batches."""

    def __init__(self, tokenizer: Tokenizer, max_tokens: int):
        self.tokenizer, self.max_tokens = tokenizer, max_tokens
        ids = [tokenizer.token_id(t) for t in (PAD, BOS, EOS)]
        if None in ids:
            raise GenlabError(f"the tokenizer lacks one of {PAD}, {BOS}, {EOS}")
        self.pad_id, self.bos_id, self.eos_id = ids

    def source_ids(self, text: str) -> list[int]:
        if not text.strip():
            raise GenlabError("the source text is empty")
        ids = self.tokenizer.encode(text)
        if len(ids) > self.max_tokens:
            raise GenlabError(f"the source is {len(ids)} tokens; the model reads at most {self.max_tokens}")
        return ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids).strip()

    def encode_pairs(self, pairs: list[Pair]) -> tuple[list[list[int]], list[list[int]], int]:
        """-> source ids, target ids (no specials) and how many pairs were skipped for a side over max_tokens
        (the target also needs room for <bos>/<eos>)."""
        sources, targets, skipped = [], [], 0
        for pair in pairs:
            s, t = self.tokenizer.encode(pair.source), self.tokenizer.encode(pair.target)
            if len(s) > self.max_tokens or len(t) + 1 > self.max_tokens:
                skipped += 1
                continue
            sources.append(s)
            targets.append(t)
        return sources, targets, skipped

    def batch(self, sources: list[list[int]], targets: list[list[int]]) -> tuple[torch.Tensor, ...]:
        """-> src (B, S), decoder input <bos>+target (B, T), labels target+<eos> (B, T), all padded with pad_id."""
        src = pad_rows(sources, self.pad_id)
        tgt_in = pad_rows([[self.bos_id, *t] for t in targets], self.pad_id)
        labels = pad_rows([[*t, self.eos_id] for t in targets], self.pad_id)
        return src, tgt_in, labels


def smoothed_loss(logits: torch.Tensor, labels: torch.Tensor, pad_id: int, smoothing: float) -> torch.Tensor:
    """logits (B, T, V), labels (B, T) -> mean label-smoothed cross-entropy over the non-padding tokens."""
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=pad_id, label_smoothing=smoothing
    )


def length_buckets(lengths: list[int], batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """One epoch's batches: a random order, cut into pools of 50 batches, each pool sorted by length and cut
    into batches (little padding), the batches then shuffled. Drawn from `generator` alone: reproducible."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    pool = 50 * batch_size
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    batches = [b for b in batches if len(b) == batch_size] or batches  # equal-sized steps where possible
    shuffle = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffle]


def describe(path: Path | None, source: str, target: str) -> str:
    return f"parallel text {path}" if path else f"Bible {source} -> {target} (Debian sword modules), split by book"


@torch.no_grad()
def translate(
    model: Seq2Seq,
    codec: Codec,
    sources: list[str],
    beam: int = 1,
    max_new_tokens: int = 160,
    batch_size: int = 64,
    length_penalty: float = 1.0,
) -> list[str]:
    """Each source's translation: greedy (beam 1, sources of similar length batched together) or beam search
    (one source at a time, its beams as the batch)."""
    was_training = model.training
    model.eval()
    ids = [codec.source_ids(s) for s in sources]
    outputs: list[list[int]] = [[] for _ in sources]
    if beam == 1:
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            for i, out in zip(chunk, greedy(model, [ids[i] for i in chunk], max_new_tokens)):
                outputs[i] = out
    else:
        outputs = [beam_search(model, s, beam, max_new_tokens, length_penalty) for s in ids]
    model.train(was_training)
    return [codec.decode(o) for o in outputs]
