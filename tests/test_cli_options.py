"""Options the CLI builds from the tasks' signatures: a bool is a --x/--no-x flag, and an option that means
something else for each task says what it means for each."""

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


def test_input_and_top_k_say_what_they_do_for_each_task():
    top_k = help_of("top-k")
    assert "lm: default all tokens" in top_k and "folk: 0 = all tokens, default 0" in top_k
    assert "vq_dalle: default the recipe's sample.top_k" in top_k
    text = help_of("input")
    for task, meaning in commands.TASK_OPTION_HELP["input"].items():
        assert f"{task}: {meaning}" in text
    assert "folk: the tune's mode" in help_of("mode") and "video: generate, predict" in help_of("mode")
