"""Every `genlab ...` command that README.md and docs/*.md show works as written.

A command is a line of a shell code block (`$ ` prompts, `\\` continuations, `&&` chains and `torchrun ... -m
genlab` included) or an inline `genlab ...` in backticks. Each is checked against the real CLI, without
training anything:
- the subcommand exists and every `--flag` is one its argparse parser accepts (block lines are also parsed by
  `genlab.cli.parse_args`, so a missing required option or a value of the wrong type is caught too);
- a generate/eval option is one the run's task takes (the run's recipe is known from the line that trained it);
- recipe names exist, and `key.sub=value` overrides validate against the recipe's schema; a sweep's space file
  is checked against the recipe as `genlab sweep` checks it;
- (block lines) the runs and files a command reads exist in the repository or are made by an earlier command
  on the same page (the README tour's runs count as made for every page: it is where a user starts), and the
  runs `genlab report` compares were evaluated first.
A line followed by the `genlab: error: ...` it prints shows a mistake on purpose and is not checked.
Inline commands may hold placeholders (RUN, N, `[--opt X]`): their values are not checked.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import io
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from genlab.cli.commands import protocol_options, task_options
from genlab.cli.parser import build_parser, parse_args
from genlab.core.recipe import SHIPPED_RECIPES, read_recipe_tree
from genlab.errors import GenlabError
from genlab.sweep.space import check_against_recipe, read_space
from genlab.tasks import DEFAULT_TASK, load_recipe

ROOT = Path(__file__).resolve().parents[1]
TOUR_PAGE = ROOT / "README.md"
PAGES = [TOUR_PAGE, *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
CHAINS = {"&&", "||", ";", "|"}
FILE_OPTIONS = {"--init", "--mask", "--low-res", "--space", "--dataset", "--templates"}  # read, not written
# Commands that are not genlab's but make evaluated runs a page goes on to use: run -> its recipe, where one.
MADE_BY_MAKE = {"demo": {"runs/demo": "essay-mlp-mnist"}}  # `make demo` trains, samples and evaluates runs/demo
MADE_BY_SCRIPT = {"benchmarks/finetune_benchmark.py": {"runs/finetune/*": None}}  # trains and evaluates 14 runs
SAVED_BY_PYTHON = re.compile(r"\.save\(\s*['\"]([^'\"]+)['\"]")  # python -c "... .save('shirt.png')"
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_.]*$|\.\.\.|…|^<.*>$")  # RUN, N, FILE.onnx, key=..., <study>


def recipe_file(name: str) -> Path | None:
    """The shipped recipe of that name, or None: the one place this test looks recipes up."""
    path = SHIPPED_RECIPES / f"{Path(name).stem}.yaml"
    return path if path.is_file() else None


@dataclass
class Command:
    where: str  # page:line
    argv: list[str]  # after `genlab`
    in_block: bool  # a code-block line (inputs checked, no placeholders) or an inline mention
    made: list[str] = field(default_factory=list)  # for a non-genlab line: the files it makes
    made_runs: dict[str, str | None] = field(default_factory=dict)  # and the evaluated runs (-> recipe)
    reads: list[str] = field(default_factory=list)  # and the files it needs (a python script)
    asks: str | None = None  # for a curl line: the model its JSON body asks the server for
    key: str | None = None  # for a curl line: the API key it sends


@dataclass
class Page:
    """What the commands of one page have made so far: runs, evaluations, files, and the server they started."""

    runs: dict[str, tuple[str | None, list[str]]] = field(default_factory=dict)  # run -> (recipe, overrides)
    evaluated: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    served: set[str] = field(default_factory=set)  # the model names of the last `genlab serve`
    api_key: str | None = None  # and the key it requires

    def copy(self) -> Page:
        return Page(dict(self.runs), set(self.evaluated), set(self.files), set(self.served), self.api_key)


def _tokens(text: str) -> list[str]:
    return shlex.split(text, comments=True)


def _unbracketed(text: str) -> str:
    """`[--opt X]` (an optional part, as usage lines show it) -> ` --opt X `; a list override's value
    (`data.targets=[a,b]`) keeps its brackets."""
    return re.sub(r"(?<!=)\[([^\[\]]*)\]", r" \1 ", text)


def _segments(tokens: list[str]) -> list[list[str]]:
    """`a && b | c` -> [a, b, c]."""
    parts: list[list[str]] = [[]]
    for token in tokens:
        if token in CHAINS:
            parts.append([])
        else:
            parts[-1].append(token)
    return [p for p in parts if p]


def _command(segment: list[str], where: str, in_block: bool) -> Command | None:
    """A genlab command (`genlab`, `python -m genlab`, `torchrun ... -m genlab`), or a line that makes files."""
    while segment and re.match(r"^[A-Z_][A-Z0-9_]*=", segment[0]):  # OMP_NUM_THREADS=1 genlab ...
        segment = segment[1:]
    if not segment:
        return None
    if segment[0] == "genlab":
        return Command(where, segment[1:], in_block)
    for i in range(len(segment) - 1):
        if segment[i] == "-m" and segment[i + 1] == "genlab":
            return Command(where, segment[i + 2 :], in_block)
    if segment[0] == "curl" and "-d" in segment[:-1]:
        body = segment[segment.index("-d") + 1]
        try:
            model = json.loads(body).get("model")
        except (json.JSONDecodeError, AttributeError):
            model = None
        bearer = [t.partition("Bearer ")[2] for t in segment if t.startswith("Authorization: Bearer ")]
        return Command(where, [], in_block, asks=model, key=(bearer or [None])[0]) if model else None
    if segment[:1] == ["make"]:
        return Command(
            where, [], in_block, made_runs={k: v for t in segment[1:] for k, v in MADE_BY_MAKE.get(t, {}).items()}
        )
    if Path(segment[0]).name.startswith("python") and "-c" in segment:
        return Command(where, [], in_block, SAVED_BY_PYTHON.findall(" ".join(segment)))
    if Path(segment[0]).name.startswith("python") and len(segment) > 1 and segment[1].endswith(".py"):
        return Command(where, [], in_block, made_runs=MADE_BY_SCRIPT.get(segment[1], {}), reads=[segment[1]])
    return None


def extract(text: str, page: str) -> list[Command]:
    """The commands of a Markdown page, in page order."""
    commands: list[Command] = []
    lines = text.splitlines()
    fence: str | None = None  # the language of the open code block
    i = 0
    while i < len(lines):
        line, number = lines[i], i + 1
        i += 1
        if line.lstrip().startswith("```"):
            fence = None if fence is not None else line.strip()[3:].strip()
            continue
        if fence is None:
            for span in re.findall(r"`(genlab [^`]+)`", line):
                try:
                    tokens = _segments(_tokens(_unbracketed(span)))[0]
                except ValueError:
                    continue
                commands.append(Command(f"{page}:{number}", tokens[1:], in_block=False))
            continue
        if fence not in SHELL_FENCES:
            continue
        while line.rstrip().endswith("\\") and i < len(lines):  # a continued line
            line = line.rstrip()[:-1] + " " + lines[i]
            i += 1
        shown_failing = i < len(lines) and lines[i].startswith("genlab: error:")
        line = line.strip().removeprefix("$ ")
        if shown_failing or not line:
            continue
        tokens = None
        while tokens is None:
            try:
                tokens = _tokens(_unbracketed(line))
            except ValueError as exc:  # a quote open across lines, as a shell reads it
                if i == len(lines) or lines[i].startswith("```"):
                    if re.match(r"^(genlab|torchrun|python)\b", line):
                        commands.append(Command(f"{page}:{number}", ["<unparsable>", str(exc), line], True))
                    tokens = []
                else:
                    line, i = line + "\n" + lines[i], i + 1
        for segment in _segments(tokens):
            command = _command(segment, f"{page}:{number}", in_block=True)
            if command is not None:
                commands.append(command)
    return commands


def subparsers() -> dict[str, argparse.ArgumentParser]:
    """genlab's subcommand -> its parser, with the options the tasks give it (the CLI adds those only to the
    command being run, so each is built as if it ran; argparse has no public way to list them)."""

    def choices(argv: list[str]) -> dict[str, argparse.ArgumentParser]:
        (action,) = [a for a in build_parser(argv)._actions if isinstance(a, argparse._SubParsersAction)]
        return dict(action.choices)

    return {name: choices([name])[name] for name in choices([])}


SUBPARSERS = subparsers()


@dataclass
class Parsed:
    positionals: list[str]
    options: dict[str, str | None]  # --flag -> its value (None for a flag without one)
    overrides: list[str]


def split_argv(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[Parsed, list[str]]:
    """Positionals, --options and key=value overrides, by the parser's own option table; and the unknown flags."""
    parsed, unknown = Parsed([], {}, []), []
    known = parser._option_string_actions  # argparse keeps no public table of a parser's options
    rest = iter(argv)
    for token in rest:
        if token.startswith("-"):
            flag, eq, value = token.partition("=")
            action = known.get(flag)
            if action is None:
                unknown.append(flag)
                continue
            parsed.options[flag] = value if eq else (next(rest, None) if action.nargs != 0 else None)
        elif "=" in token:  # as genlab.cli.parse_args reads them
            parsed.overrides.append(token)
        else:
            parsed.positionals.append(token)
    return parsed, unknown


def is_placeholder(token: str | None) -> bool:
    return token is None or bool(PLACEHOLDER.search(token)) or "|" in token


def _exists(path: str, page: Page) -> bool:
    return path in page.files or (ROOT / path).exists()


def _runs(pattern: str, page: Page) -> list[str]:
    """The runs made so far that a path or a shell glob names."""
    names = [r for r in page.runs if fnmatch.fnmatch(r, pattern.rstrip("/"))]
    return names or ([pattern] if pattern in page.evaluated else [])


def _task_of(run: str, page: Page) -> str | None:
    if run not in page.runs:
        return None
    recipe, overrides = page.runs[run]
    return None if recipe is None else str(read_recipe_tree(recipe, overrides).get("task", DEFAULT_TASK))


def _check_recipe(recipe: str, overrides: list[str]) -> list[str]:
    if recipe_file(recipe) is None and not (ROOT / recipe).is_file():
        return [f"no recipe '{recipe}'"]
    try:
        load_recipe(recipe_file(recipe) or ROOT / recipe, overrides)
    except GenlabError as exc:
        return [f"recipe {recipe} {' '.join(overrides)}: {exc}"]
    return []


def _check_task_options(sub: str, parsed: Parsed, page: Page) -> list[str]:
    """A generate/eval option the run's own task does not take (e.g. --guidance for a GAN run)."""
    task = _task_of(parsed.positionals[0], page) if parsed.positionals else None
    if task is None:
        return []
    protocol = parsed.options.get("--protocol")
    if sub == "eval" and protocol:
        takers = {name: set(by) for name, (_, by) in protocol_options().items()}
        owner = f"--protocol {protocol}"
    else:
        method = "generate" if sub == "generate" else "evaluate"
        takers = {name: set(by) for name, (_, by) in task_options(method).items()}
        owner = task
    problems = []
    for flag in parsed.options:
        name = flag.removeprefix("--").replace("-", "_")
        if name in takers and owner not in takers[name]:
            problems.append(f"{flag}: a '{task}' run's {sub} has no such option ({owner})")
    return problems


def check(command: Command, page: Page) -> list[str]:
    """What is wrong with one command (nothing: []); records what it makes in `page`."""
    if command.asks and command.asks not in page.served:
        return [f"curl asks for model '{command.asks}'; the `genlab serve` above serves {sorted(page.served)}"]
    if command.asks and command.key != page.api_key:
        return [f"curl sends API key {command.key!r}; the `genlab serve` above requires {page.api_key!r}"]
    if command.in_block and (missing := [f for f in command.reads if not _exists(f, page)]):
        return [f"{missing[0]}: not in the repository"]
    page.files.update(command.made)
    page.runs.update({run: (recipe, []) for run, recipe in command.made_runs.items()})
    page.evaluated.update(command.made_runs)
    if not command.argv:
        return []
    if command.argv[0] in ("--help", "-h", "--version"):  # genlab's own flags, answered without a subcommand
        return []
    # genlab.cli.main takes --debug anywhere before `--` (it is no subcommand's option)
    sub, argv = command.argv[0], [token for token in command.argv[1:] if token != "--debug"]
    if sub not in SUBPARSERS:
        return [f"no subcommand '{sub}' (known: {', '.join(SUBPARSERS)})"]
    parsed, unknown = split_argv(SUBPARSERS[sub], argv)
    problems = [f"genlab {sub} has no option {flag}" for flag in unknown]
    concrete = command.in_block and not any(is_placeholder(t) for t in argv if not t.startswith("-"))
    if command.in_block and not unknown:
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.suppress(SystemExit):
            parse_args([sub, *argv])
        if stderr.getvalue() and concrete:
            problems.append(stderr.getvalue().strip().splitlines()[-1])
    overrides = [o for o in parsed.overrides if not is_placeholder(o.partition("=")[2])]
    positionals = parsed.positionals
    resume = parsed.options.get("--resume")
    if sub in ("train", "sweep") and not resume and positionals and not is_placeholder(positionals[0]):
        recipe = positionals[0]
        problems += _check_recipe(recipe, overrides)
        if sub == "train":
            out = parsed.options.get("--out") or f"runs/{Path(recipe).stem}"
            page.runs[out] = (recipe, overrides)
    if sub == "train" and resume and page.runs.get(resume, (None,))[0] is not None:
        recipe, before = page.runs[resume]
        problems += _check_recipe(recipe, before + overrides)
        page.runs[resume] = (recipe, before + overrides)
    if sub == "sweep" and positionals and not problems:
        problems += _check_sweep(positionals[0], overrides, parsed, page)
    problems += _check_task_options(sub, parsed, page)
    if command.in_block:
        problems += _check_inputs(sub, parsed, page)
        _record_outputs(sub, parsed, page)
    return problems


def _check_sweep(recipe: str, overrides: list[str], parsed: Parsed, page: Page) -> list[str]:
    space = parsed.options.get("--space")
    if is_placeholder(space) or not _exists(space, page) or space in page.files:
        return []  # a missing file is _check_inputs' to report
    try:
        check_against_recipe(read_space(ROOT / space), read_recipe_tree(recipe_file(recipe), overrides), space)
    except GenlabError as exc:
        return [str(exc)]
    study = parsed.options.get("--study") or f"{Path(recipe).stem}-{Path(space).stem}"
    page.evaluated.add(f"{parsed.options.get('--out') or 'sweeps'}/{study}")  # a sweep folder `report` reads
    return []


def _check_inputs(sub: str, parsed: Parsed, page: Page) -> list[str]:
    problems = []
    reads_runs = {"eval": 1, "generate": 1, "export": 1, "serve": None, "report": None}
    runs = parsed.positionals[: reads_runs[sub]] if sub in reads_runs else []
    if parsed.options.get("--resume"):
        runs.append(parsed.options["--resume"])
    for run in runs:
        if is_placeholder(run):
            continue
        found = _runs(run, page)
        if not found:
            problems.append(f"{run}: no run of that name is made earlier on this page or in the README tour")
        elif sub == "report":
            problems += [f"{r}: `genlab report` needs it evaluated first" for r in found if r not in page.evaluated]
    for flag in FILE_OPTIONS & set(parsed.options):
        path = parsed.options[flag]
        if is_placeholder(path) or (flag in ("--dataset", "--templates") and not Path(path).suffix):
            continue  # a data set or template name, not a file
        if not _exists(path, page):
            problems.append(f"{flag} {path}: not in the repository, and no earlier command on this page makes it")
    return problems


def _record_outputs(sub: str, parsed: Parsed, page: Page) -> None:
    out = parsed.options.get("--out")
    if sub == "serve":
        page.served = {Path(run).name for run in parsed.positionals}
        page.api_key = parsed.options.get("--api-key")
    if sub == "eval" and parsed.positionals:
        page.evaluated.update(_runs(parsed.positionals[0], page))
    if out and sub in ("generate", "export", "report"):
        page.files.add(out.rstrip("/"))
        if sub == "export":
            page.files.add(str(Path(out).with_suffix(".json")))


def tour() -> Page:
    """What the README makes: every page may use the runs of its tour."""
    page = Page()
    for command in extract(TOUR_PAGE.read_text(encoding="utf-8"), TOUR_PAGE.name):
        check(command, page)
    return page


def shown(command: Command) -> str:
    if command.argv:
        return f"genlab {shlex.join(command.argv)}"
    return f"a line that asks for {command.asks}" if command.asks else f"a line that reads {command.reads}"


def check_page(text: str, name: str, start: Page) -> tuple[list[Command], list[str]]:
    page = start.copy()
    commands = extract(text, name)
    problems = [f"{c.where}: {shown(c)}\n    -> {p}" for c in commands for p in check(c, page)]
    return commands, problems


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_every_documented_command_works_as_written(path):
    start = Page() if path == TOUR_PAGE else tour()
    commands, problems = check_page(path.read_text(encoding="utf-8"), path.name, start)
    assert not problems, "\n".join(problems)
    if path == TOUR_PAGE:  # the extraction itself: the tour is found, line by line
        assert sum(c.in_block and bool(c.argv) for c in commands) >= 30


BROKEN = [  # (a code block's lines, what the report must say)
    (["genlab train essay-mlp-mnist --outt runs/x"], "genlab train has no option --outt"),
    (["python benchmarks/no_such_benchmark.py"], "benchmarks/no_such_benchmark.py: not in the repository"),
    (["make demo", "genlab generate runs/demo --prompt hello"], "--prompt"),
    (["genlab trian essay-mlp-mnist"], "no subcommand 'trian'"),
    (["genlab train essay-mlp-mnist train.epochz=3"], "unknown recipe key 'train.epochz'"),
    (["genlab train char-gpt-kjv train.max_iters=200"], "must be a multiple"),
    (["genlab eval runs/never-trained"], "runs/never-trained: no run of that name"),
    (["genlab train dcgan-fashion --out runs/d", "genlab generate runs/d --guidance 2 --out g.png"], "--guidance"),
    (["genlab train modernize-full", "genlab report runs/modernize-*"], "needs it evaluated first"),
    (["genlab sweep char-gpt-kjv --trials 2"], "--space"),
    (["genlab sweep char-gpt-kjv --space none.yaml --trials 2"], "--space none.yaml: not in the"),
    (["genlab train flow-fashion", "genlab generate runs/flow-fashion --init shirt.png --out e.png"], "shirt.png"),
    (["genlab serve runs/demo", """curl -s localhost:8000/v1/images -d '{"model": "cond"}'"""], "'cond'"),
    (["genlab serve runs/demo --api-key k", """curl localhost:8000/v1/images -d '{"model": "demo"}'"""], "key"),
]


@pytest.mark.parametrize("lines, expected", BROKEN, ids=[expected for _, expected in BROKEN])
def test_a_broken_command_is_reported(lines, expected):
    _, problems = check_page("```bash\n" + "\n".join(lines) + "\n```\n", "made-up.md", Page())
    assert any(expected in p for p in problems), problems


def test_an_inline_mention_is_checked():
    _, problems = check_page("Train with `genlab train no-such-recipe`.", "made-up.md", Page())
    assert problems and "no recipe 'no-such-recipe'" in problems[0]


def test_a_command_shown_failing_and_files_made_on_the_page_pass():
    page = (
        "```\n$ genlab train essay-mlp-mnist train.epochz=3\ngenlab: error: unknown recipe key\n```\n"
        "```bash\ngenlab train flow-fashion --out runs/f && genlab eval runs/f\n"
        "python -c \"from PIL import Image; Image.new('L', (28, 28)).save('a.png')\"\n"
        "genlab generate runs/f --init a.png --strength 0.5 \\\n    --label 3 --out b.png   # a comment\n"
        "genlab report runs/f\n```\n"
    )
    commands, problems = check_page(page, "made-up.md", Page())
    assert problems == []
    assert [c.argv[:1] for c in commands] == [["train"], ["eval"], [], ["generate"], ["report"]]
