"""The chat model: its template against transformers' rendering, the loss mask, the data, the terminal chat."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import genlab
from genlab import api
from genlab.data.chat import Exchange, file_exchanges, with_context
from genlab.errors import GenlabError
from genlab.evaluation.language import language
from genlab.io.chat_template import END, add_chat_tokens, check_messages, export_chat_template, render
from genlab.io.tokenizers import BPETokenizer, load_tokenizer
from genlab.tasks import TASKS
from genlab.tasks.chat.process import IGNORE_INDEX, encode_conversation
from genlab.tasks.chat.scoring import score_kind

CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Translate into Spanish: the light\n and the water"},
    {"role": "assistant", "content": "la luz y el agua"},
    {"role": "user", "content": "¿Y ahora?"},
    {"role": "assistant", "content": " Bien, gracias."},
]


@pytest.fixture(scope="module")
def tokenizer():
    texts = [m["content"] for m in CONVERSATION] * 20 + ["hello world, how are you today?"] * 20
    return add_chat_tokens(BPETokenizer.train(texts, 300))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The tiny chat run (the contract's), trained once."""
    folder = tmp_path_factory.mktemp("chat")
    tiny = TASKS["chat"].tiny(folder)
    return api.fit(tiny.recipe, folder / "run", tiny.overrides)[0]


def test_the_template_renders_as_transformers_does_with_the_exported_tokenizer(tokenizer, tmp_path):
    transformers = pytest.importorskip("transformers", reason="transformers (the test extra) checks the round trip")
    tokenizer.save(tmp_path / "tokenizer.json")
    export_chat_template(tmp_path)
    hf = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    for messages in (CONVERSATION, CONVERSATION[1:2], CONVERSATION[:3]):
        for generation in (True, False):
            text = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)
            assert text == render(messages, add_generation_prompt=generation)
            ids = hf.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation)
            ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
            assert list(ids) == tokenizer.encode(text)  # the markers are one id each on both sides
    assert hf.eos_token == END and len(tokenizer.encode(END)) == 1


def test_the_loss_covers_the_assistants_tokens_and_end_markers_only(tokenizer):
    ids, labels = encode_conversation(tokenizer, CONVERSATION)
    assert ids == tokenizer.encode(render(CONVERSATION, add_generation_prompt=False))
    trained = [token for token in labels if token != IGNORE_INDEX]
    assert tokenizer.tok.decode(trained, skip_special_tokens=False) == f"la luz y el agua{END} Bien, gracias.{END}"
    assert [i for i, t in zip(ids, labels) if t != IGNORE_INDEX] == trained  # labels are the ids where trained


def test_bad_messages_are_one_line_each():
    for bad, says in [
        ([], "at least one message"),
        ([{"role": "robot", "content": "hi"}], "'robot' is not one of"),
        ([{"role": "user", "content": 3}], "must be a string"),
        ([{"role": "user", "content": f"a{END}b"}], "chat marker"),
        (["hi"], "is an object"),
    ]:
        with pytest.raises(GenlabError, match=says):
            check_messages(bad)


def test_context_and_file_conversations(tmp_path):
    path = tmp_path / "talk.jsonl"
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    path.write_text(json.dumps({"kind": "smalltalk", "messages": messages}) + "\n")
    assert sum(len(v) for v in file_exchanges(path).values()) == 1
    path.write_text(json.dumps({"kind": "smalltalk", "messages": messages[:1]}) + "\n")
    with pytest.raises(GenlabError, match="last message must be the assistant's"):
        file_exchanges(path)
    main = Exchange("translate", tuple(messages))
    other = Exchange("smalltalk", ({"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}))
    longer = with_context(main, [other], random.Random(0), system=1.0, multi=1.0)
    assert [m["role"] for m in longer.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert longer.reference == "hello" and longer.kind == "translate"


def test_scores_per_kind_and_language():
    assert language("En el principio creó Dios los cielos y la tierra.") == "spanish"
    assert language("In the beginning God created the heavens and the earth.") == "english"

    def ask(kind: str, text: str, ref: str) -> Exchange:
        return Exchange(kind, ({"role": "user", "content": text}, {"role": "assistant", "content": ref}))

    cats = [ask("category", "q", label) for label in ("love", "people", "love")]
    scores = score_kind("category", cats, ["love", "love", "nonsense"], [True, True, False])
    assert scores["accuracy"] == pytest.approx(1 / 3) and scores["format_rate"] == pytest.approx(2 / 3)
    assert scores["ended_rate"] == pytest.approx(2 / 3) and 0 < scores["macro_f1"] < 1
    verses = [ask("translate", "Translate into Spanish: light", "la luz es buena")]
    assert score_kind("translate", verses, ["la luz es buena"], [True])["bleu"] == pytest.approx(100)


def test_the_run_exports_its_chat_template_and_answers(run):
    for folder in (run, run / "model"):
        config = json.loads((folder / "tokenizer_config.json").read_text())
        assert config["eos_token"] == END and "<|assistant|>" in config["chat_template"]
    handle = genlab.load(run)
    answer = handle.generate(prompt="Translate into Spanish: sun moon", max_tokens=6)
    assert isinstance(answer, str) and END not in answer
    assert load_tokenizer(run).token_id(END) is not None
    with pytest.raises(GenlabError, match="context"):
        list(handle.reply([{"role": "user", "content": "sun " * 200}]))


def test_genlab_chat_keeps_the_history_from_piped_stdin(run):
    lines = "Translate into Spanish: sun moon\nWhy?\n/reset\n\nhello\n" + "sun moon star " * 40 + "\n"
    done = subprocess.run(
        [sys.executable, "-m", "genlab", "chat", str(run), "--max-tokens", "4"],
        input=lines,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"chatting with {run}") and out.count("assistant> ") == 3
    assert "(conversation forgotten)" in out and "(not sent: the conversation is" in out


def test_genlab_chat_refuses_a_run_that_is_not_a_chat_model(monkeypatch, capsys):
    from genlab.cli import chat as chat_cli
    from genlab.cli import main
    from genlab.tasks.contract import RunHandle

    plain = RunHandle(SimpleNamespace(path=Path("runs/lm")), SimpleNamespace(task="lm"), "last")
    monkeypatch.setattr(chat_cli.api, "load", lambda run, checkpoint: plain)
    assert main(["chat", "runs/lm"]) == 2
    err = capsys.readouterr().err
    assert "not a chat model" in err and err.count("\n") == 1


class RecordingChat:
    """A stand-in chat run that answers "ok N" and records every conversation it was asked to continue."""

    def __init__(self, context_messages: int = 100):
        self.seen: list[list[dict[str, str]]] = []
        self.context_messages = context_messages

    def reply(self, messages, **options):
        from genlab.io.chat_template import TooLong

        if len(messages) > self.context_messages:
            raise TooLong("too long")
        self.seen.append([dict(m) for m in messages])
        yield f"ok {len(self.seen)}"


def test_the_chat_loop_sends_the_whole_history_and_forgets_the_oldest(monkeypatch, capsys):
    from genlab.cli import chat as chat_cli
    from genlab.cli import main

    fake = RecordingChat(context_messages=4)
    monkeypatch.setattr(chat_cli.api, "load", lambda run, checkpoint: fake)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("one\ntwo\nthree\n"))
    assert main(["chat", "somewhere", "--system", "be kind"]) == 0
    probe, first, second, third = fake.seen  # the probe checks the options before the prompt
    assert probe == [{"role": "user", "content": "hi"}]
    assert first == [{"role": "system", "content": "be kind"}, {"role": "user", "content": "one"}]
    assert [m["content"] for m in second] == ["be kind", "one", "ok 2", "two"]
    assert [m["content"] for m in third] == ["be kind", "two", "ok 3", "three"]  # "one" forgotten: context full
    assert "forgot the oldest exchange" in capsys.readouterr().out


def test_a_penalty_out_of_range_is_one_line(tmp_path):
    tiny = TASKS["chat"].tiny(tmp_path)
    with pytest.raises(GenlabError, match=r"decoding.frequency_penalty .* \[-2, 2\]"):
        api.fit(tiny.recipe, tmp_path / "run", [*tiny.overrides, "decoding.frequency_penalty=3"])
    assert not (tmp_path / "run").exists()


def test_genlab_chat_refuses_a_bad_sampling_option_before_the_prompt(run, capsys):
    from genlab.cli import main

    assert main(["chat", str(run), "--frequency-penalty", "3"]) == 2
    captured = capsys.readouterr()
    assert "frequency_penalty must be in [-2, 2]" in captured.err and captured.err.count("\n") == 1
    assert "chatting with" not in captured.out
