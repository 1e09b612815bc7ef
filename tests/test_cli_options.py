"""Options the CLI builds from the tasks' signatures: a bool is a --x/--no-x flag, and an option that means
something else for each task says what it means for each (from the `Args:` section of the task's docstring)."""

from __future__ import annotations

import argparse

import pytest

from genlab.cli import commands
from genlab.cli.parser import build_parser


def parser_for(*functions) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genlab generate")
    owners = {f"task{i}": function for i, function in enumerate(functions)}
    commands._add_options(parser, commands._signature_options(owners))
    return parser


def test_a_bool_parameter_is_a_flag_and_its_negation():
    class Handle:
        def generate(self, loop: bool = False, sharp: bool | None = None) -> None: ...

    parser = parser_for(Handle.generate)
    assert vars(parser.parse_args(["--loop", "--no-sharp"])) == {"loop": True, "sharp": False}
    assert vars(parser.parse_args(["--no-loop"])) == {"loop": False}
    assert vars(parser.parse_args([])) == {}  # not given: not passed on, the task keeps its default
    with pytest.raises(SystemExit):  # `--loop false` is an error, not True
        parser.parse_args(["--loop", "false"])


def help_of(option: str) -> str:
    """`genlab generate --help`'s text for one option, on one line."""
    parser = build_parser(["generate", "RUN"])
    generate = parser._subparsers._group_actions[0].choices["generate"]
    action = next(a for a in generate._actions if f"--{option}" in a.option_strings)
    return action.help


def test_a_task_says_what_an_option_means_for_it_in_its_docstring():
    def generate(self, input: str | None = None, depth: int = 2, plain: int = 0) -> None:
        """Prose the CLI does not read.

        Args:
            input: a picture to redraw,
                at any size
            depth: how deep
        Returns: nothing
        """

    assert commands.option_docs(generate) == {"input": "a picture to redraw, at any size", "depth": "how deep"}
    assert commands.option_docs(lambda: None) == {}


def test_input_and_top_k_say_what_they_do_for_each_task():
    top_k = help_of("top-k")
    assert top_k.startswith("sample among the k likeliest tokens (lm: None = every token may be drawn; ")
    assert "folk: 0 = every token may be drawn, default 0" in top_k and "vq_dalle: None = the recipe's" in top_k
    text = help_of("input")
    for task in ("video", "pix2pix", "vqgan"):
        assert f"{task}: {commands.task_option_docs('generate')['input'][task]}" in text
    assert "video: one .npy (T, H, W)" in text and "vqgan: an image file of the model's size and mode" in text
    assert help_of("mode").startswith("folk: the tune's mode") and "video: generate (new clips)" in help_of("mode")


def test_a_worker_timeout_must_be_positive(capsys):
    from genlab.cli import main

    assert main(["serve", "no-such-run", "--workers", "2", "--worker-timeout", "0"]) == 2
    assert capsys.readouterr().err.strip() == "genlab: error: --worker-timeout must be more than 0 seconds, got 0.0"
