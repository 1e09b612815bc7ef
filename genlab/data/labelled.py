"""Labelled data for fine-tuning: the three built-in data sets and any .jsonl file a user points at.

- fortunes:  classify a Debian fortune into its category (the 10 largest categories)
- modernize: KJV verse -> WEB verse (archaic -> modern English)
- translate: WEB verse -> Spanish RV1909 verse
- FILE.jsonl: {"text": ..., "label": ...} lines (classify) or {"source": ..., "target": ...} (seq2seq)

Every example keeps the split of genlab.data.text: a Bible pair by its verse reference, a fortune or
a file record by its text, so no test verse is ever trained on, in either language.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from genlab.data.text import SPLITS, load_fortunes, parallel_verses, read_jsonl, split_of
from genlab.errors import GenlabError

NUM_FORTUNE_CLASSES = 10
# name -> (kind, description); the Bible pairs are (source version, target version)
FINETUNE_DATASETS = {
    "fortunes": ("classify", f"Debian fortunes, the {NUM_FORTUNE_CLASSES} largest categories"),
    "modernize": ("seq2seq", "KJV verse -> WEB verse (Debian sword-text-kjv, sword-text-web)"),
    "translate": ("seq2seq", "WEB verse -> Spanish RV1909 verse (Debian sword-text-web, sword-text-sparv)"),
}
BIBLE_PAIRS = {"modernize": ("kjv", "web"), "translate": ("web", "rv1909")}


@dataclass
class LabelledData:
    """Examples per split: (text, label) for classify, (source, target) for seq2seq."""

    kind: str  # classify | seq2seq
    source: str  # where the data came from, for the log and the ledger
    splits: dict[str, list[tuple[str, str]]]
    labels: list[str] = field(default_factory=list)  # classify: the classes, in id order

    def check(self) -> None:
        """The errors a user can make in a data file, each as one line."""
        for split in SPLITS:
            if not self.splits.get(split):
                raise GenlabError(f"{self.source}: the {split} split is empty (too few examples?)")
        if self.kind == "seq2seq":
            for split, pairs in self.splits.items():
                for source, target in pairs:
                    if not source.strip() or not target.strip():
                        raise GenlabError(
                            f"{self.source}: an empty source or target in the {split} split "
                            f"(source {source[:40]!r}, target {target[:40]!r})"
                        )
            return
        trained = {label for _, label in self.splits["train"]}
        for split in ("validation", "test"):
            unseen = sorted({label for _, label in self.splits[split]} - trained)
            if unseen:
                raise GenlabError(
                    f"{self.source}: label {unseen[0]!r} of the {split} split never occurs in the training data"
                )
        self.labels = sorted(trained)

    def per_class_examples(self, k: int, seed: int) -> list[tuple[str, str]]:
        """k training examples of each label, drawn and then shuffled by `seed` alone (the few-shot
        protocol: which examples and in which order both vary with the seed)."""
        if self.kind != "classify":
            raise GenlabError(f"{self.source}: k examples per class needs a classify dataset")
        by_label: dict[str, list[tuple[str, str]]] = {}
        for example in self.splits["train"]:
            by_label.setdefault(example[1], []).append(example)
        rng = random.Random(seed)
        chosen = []
        for label in sorted(by_label):
            if k > len(by_label[label]):
                raise GenlabError(
                    f"k={k} examples per class, but label {label!r} has only {len(by_label[label])} training examples"
                )
            chosen += rng.sample(by_label[label], k)
        rng.shuffle(chosen)
        return chosen

    def training_examples(
        self, limit: int, seed: int, per_class: int = 0, subset_seed: int = 0
    ) -> list[tuple[str, str]]:
        """All training examples, `per_class` of each label (drawn by `subset_seed`), or a seeded random
        `limit` of them (files are often sorted by label, so the first `limit` could all share one)."""
        if per_class:
            return self.per_class_examples(per_class, subset_seed)
        train = self.splits["train"]
        if not limit or limit >= len(train):
            return train
        subset = random.Random(seed).sample(train, limit)
        if self.kind == "classify" and len({label for _, label in subset}) < 2:
            raise GenlabError(f"data.limit={limit} leaves a single label to learn: use a larger limit")
        return subset

    def test_examples(self, limit: int) -> list[tuple[str, str]]:
        """The test split, or `limit` examples spread evenly over it (a Bible's test verses run from
        Genesis to Revelation: the first `limit` would all come from its first books)."""
        test = self.splits["test"]
        if not limit or limit >= len(test):
            return test
        return [test[i * len(test) // limit] for i in range(limit)]


def _by_split(records: list[tuple[str, tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
    """(split key, example) records -> examples per split, in their original order."""
    out: dict[str, list[tuple[str, str]]] = {s: [] for s in SPLITS}
    for key, example in records:
        out[split_of(key)].append(example)
    return out


def fortune_data() -> LabelledData:
    fortunes = load_fortunes()
    top = {c for c, _ in Counter(f.category for f in fortunes).most_common(NUM_FORTUNE_CLASSES)}
    records = [(f.text, (f.text, f.category)) for f in fortunes if f.category in top]
    return LabelledData("classify", FINETUNE_DATASETS["fortunes"][1], _by_split(records))


def bible_data(name: str) -> LabelledData:
    src, tgt = BIBLE_PAIRS[name]
    splits = {s: [(a.text, b.text) for a, b in parallel_verses(src, tgt, s)] for s in SPLITS}
    return LabelledData("seq2seq", FINETUNE_DATASETS[name][1], splits)


def jsonl_data(path: Path, kind: str) -> LabelledData:
    records = []
    for n, record in read_jsonl(path):
        if kind == "auto":
            kind = "seq2seq" if isinstance(record, dict) and "source" in record else "classify"
        keys = ("source", "target") if kind == "seq2seq" else ("text", "label")
        if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in keys):
            raise GenlabError(f'{path}:{n}: expected an object with string fields "{keys[0]}" and "{keys[1]}"')
        records.append((record[keys[0]], (record[keys[0]], record[keys[1]])))
    if not records:
        raise GenlabError(f"{path} holds no examples")
    return LabelledData(kind, str(path), _by_split(records))


def load_labelled_data(dataset: str, kind: str = "auto") -> LabelledData:
    """The checked examples of a named task or a .jsonl file."""
    if dataset in FINETUNE_DATASETS:
        data = fortune_data() if dataset == "fortunes" else bible_data(dataset)
    else:
        path = Path(dataset).expanduser()
        if path.suffix != ".jsonl" or not path.is_file():
            raise GenlabError(
                f"unknown fine-tuning dataset {dataset!r}: not one of {', '.join(FINETUNE_DATASETS)} "
                "nor an existing .jsonl file"
            )
        data = jsonl_data(path, kind)
    if kind != "auto" and kind != data.kind:
        raise GenlabError(f"data.kind={kind} but {dataset} is a {data.kind} dataset")
    data.check()
    return data
