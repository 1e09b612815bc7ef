"""Conversations for a chat model, built offline from the corpora genlab already has.

Five kinds of exchange, each a user instruction and the assistant's answer:
- translate: "Translate into Spanish: <WEB verse>" -> the Spanish RV1909 verse;
- modernize: "Say this in modern English: <KJV verse>" -> the WEB verse;
- fortune:   "Give me a fortune about <category>" -> a Debian fortune of that category;
- category:  "Which category is this quote from? <fortune>" -> its category (the 10 largest);
- smalltalk: the English and Spanish conversations of PyPI `chatterbot-corpus` (several turns each).

Each keeps the split of its source (genlab.data.labelled: a verse by its reference, a fortune by its text;
a small-talk conversation by its first line), so a test verse or quote is never trained on. A user's own
conversations come from a .jsonl file of {"kind": ..., "messages": [{"role", "content"}, ...]} lines,
split by a hash of the first message.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from genlab.data.labelled import bible_data, fortune_data
from genlab.data.text import SPLITS, read_jsonl, split_of
from genlab.errors import GenlabError
from genlab.io.chat_template import check_messages

KINDS = ("translate", "modernize", "fortune", "category", "smalltalk")
# Several phrasings of each instruction, so the model learns the request and not one string.
INSTRUCTIONS = {
    "translate": ("Translate into Spanish: {}", "translate into Spanish: {}", "How do you say this in Spanish? {}"),
    "modernize": ("Say this in modern English: {}", "Rewrite in modern English: {}", "Modernize this verse: {}"),
    "fortune": ("Give me a fortune about {}", "give me a fortune about {}", "Tell me a quote about {}"),
    "category": (
        "Which category is this quote from? {}",
        "Which fortune category is this? {}",
        "Classify this quote: {}",
    ),
}
SYSTEM_PROMPTS = ("You are a helpful assistant.", "You are genlab's small chat model. Answer briefly.")
SMALLTALK_LANGUAGES = ("english", "spanish")
MAX_FORTUNE_CHARS = 240  # longer quotes make poor one-turn answers


@dataclass(frozen=True)
class Exchange:
    """One conversation of a kind; its last message is the assistant's answer (the reference)."""

    kind: str
    messages: tuple[dict[str, str], ...]

    @property
    def reference(self) -> str:
        return self.messages[-1]["content"]


def _phrase(kind: str, text: str, rng: random.Random) -> tuple[dict[str, str], ...]:
    return ({"role": "user", "content": rng.choice(INSTRUCTIONS[kind]).format(text)},)


def bible_exchanges(kind: str, seed: int) -> dict[str, list[Exchange]]:
    """translate / modernize exchanges per split, from the verse-aligned Bibles."""
    rng = random.Random(seed)
    data = bible_data(kind)
    return {
        split: [
            Exchange(kind, _phrase(kind, source, rng) + ({"role": "assistant", "content": target},))
            for source, target in pairs
        ]
        for split, pairs in data.splits.items()
    }


def fortune_exchanges(seed: int) -> tuple[dict[str, list[Exchange]], dict[str, list[Exchange]]]:
    """(fortune, category) exchanges per split, from the 10 largest fortune categories."""
    rng = random.Random(seed)
    data = fortune_data()
    fortunes: dict[str, list[Exchange]] = {}
    categories: dict[str, list[Exchange]] = {}
    for split, quotes in data.splits.items():
        short = [(text, label) for text, label in quotes if len(text) <= MAX_FORTUNE_CHARS]
        fortunes[split] = [
            Exchange("fortune", _phrase("fortune", label, rng) + ({"role": "assistant", "content": text},))
            for text, label in short
        ]
        categories[split] = [
            Exchange("category", _phrase("category", text, rng) + ({"role": "assistant", "content": label},))
            for text, label in short
        ]
    return fortunes, categories


def smalltalk_exchanges() -> dict[str, list[Exchange]]:
    """chatterbot-corpus's English and Spanish conversations, alternating user / assistant."""
    try:
        from chatterbot_corpus.corpus import DATA_DIRECTORY
    except ImportError:
        raise GenlabError("small talk needs PyPI chatterbot-corpus: pip install 'chatterbot-corpus==1.3.3'") from None
    import yaml

    out: dict[str, list[Exchange]] = {s: [] for s in SPLITS}
    for language in SMALLTALK_LANGUAGES:
        for path in sorted(Path(DATA_DIRECTORY, language).glob("*.yml")):
            for lines in yaml.safe_load(path.read_text(encoding="utf-8")).get("conversations") or []:
                lines = [str(line).strip() for line in lines if str(line).strip()]
                if len(lines) < 2:
                    continue
                roles = ("user", "assistant") * len(lines)
                messages = tuple({"role": r, "content": c} for r, c in zip(roles, lines))
                messages = messages[: len(messages) // 2 * 2]  # end on the assistant's turn
                out[split_of(lines[0])].append(Exchange("smalltalk", messages))
    return out


def file_exchanges(path: Path) -> dict[str, list[Exchange]]:
    """A user's conversations: {"kind", "messages"} lines, each ending with an assistant message."""
    out: dict[str, list[Exchange]] = {s: [] for s in SPLITS}
    for n, record in read_jsonl(path):
        if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
            raise GenlabError(f'{path}:{n}: expected an object with a string "kind" and a "messages" list')
        messages = check_messages(record.get("messages"), f"{path}:{n}: messages")
        if messages[-1]["role"] != "assistant":
            raise GenlabError(f"{path}:{n}: the last message must be the assistant's")
        out[split_of(messages[0]["content"])].append(Exchange(record["kind"], tuple(messages)))
    return out


def load_exchanges(file: str, seed: int) -> dict[str, dict[str, list[Exchange]]]:
    """kind -> split -> exchanges: the built-in five kinds, or the kinds of a .jsonl file."""
    if file:
        path = Path(file).expanduser()
        if path.suffix != ".jsonl" or not path.is_file():
            raise GenlabError(f"data.file: {file} is not an existing .jsonl file")
        by_kind: dict[str, dict[str, list[Exchange]]] = {}
        for split, exchanges in file_exchanges(path).items():
            for ex in exchanges:
                by_kind.setdefault(ex.kind, {s: [] for s in SPLITS})[split].append(ex)
        return by_kind
    fortunes, categories = fortune_exchanges(seed)
    return {
        "translate": bible_exchanges("translate", seed),
        "modernize": bible_exchanges("modernize", seed),
        "fortune": fortunes,
        "category": categories,
        "smalltalk": smalltalk_exchanges(),
    }


def spread(examples: list[Exchange], limit: int) -> list[Exchange]:
    """`limit` examples spread evenly over a list (all of it for limit 0 or more than it holds)."""
    if not limit or limit >= len(examples):
        return list(examples)
    return [examples[i * len(examples) // limit] for i in range(limit)]


def with_context(main: Exchange, pool: list[Exchange], rng: random.Random, system: float, multi: float) -> Exchange:
    """`main`, sometimes after another exchange of the same split (multi-turn context, with chance `multi`) and
    sometimes under a system prompt (chance `system`); the kind and the reference stay `main`'s."""
    messages = main.messages
    if pool and rng.random() < multi:
        messages = rng.choice(pool).messages + messages
    if rng.random() < system:
        messages = ({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)},) + messages
    return Exchange(main.kind, messages)
