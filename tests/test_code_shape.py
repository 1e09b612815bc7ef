"""Functions a reader can hold in their head: no function in genlab/ over 40 lines of body or nested over 4
levels of blocks, unless a comment `# long: <why>` stands on the line just above its `def` (or its decorators)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "genlab"
MAX_LINES = 40
MAX_DEPTH = 4
BLOCKS = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, ast.Match)
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def depth(node: ast.AST, level: int = 0) -> int:
    """The deepest nesting of blocks inside `node`, not counting nested functions or classes (they are
    measured on their own)."""
    deepest = level
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (*FUNCTIONS, ast.ClassDef)):
            continue
        deepest = max(deepest, depth(child, level + isinstance(child, BLOCKS)))
    return deepest


def body_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement after the docstring to the end."""
    body = function.body
    if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return function.end_lineno - body[0].lineno + 1


def has_reason(lines: list[str], function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    first = min([function.lineno] + [d.lineno for d in function.decorator_list])
    return first >= 2 and lines[first - 2].strip().startswith("# long:")


def oversized(path: Path, root: Path = ROOT) -> list[str]:
    text = path.read_text()
    lines = text.splitlines()
    found = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, FUNCTIONS) or has_reason(lines, node):
            continue
        size, nesting = body_lines(node), depth(node)
        if size > MAX_LINES or nesting > MAX_DEPTH:
            found.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name}: {size} lines, depth {nesting}")
    return found


def test_functions_are_short_and_shallow_or_say_why():
    assert [line for path in sorted(ROOT.rglob("*.py")) for line in oversized(path)] == []


def test_the_check_finds_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES + 1))
    deep = (
        "def deep(a):\n" + "".join("    " * (i + 1) + "if a:\n" for i in range(MAX_DEPTH + 1)) + "    " * 6 + "pass\n"
    )
    kept = "# long: a table read top to bottom\ndef kept():\n" + body + "\n"
    (tmp_path / "m.py").write_text("def long():\n" + body + "\n\n" + deep + "\n" + kept)
    found = oversized(tmp_path / "m.py", root=tmp_path)
    assert [line.split(" ")[1] for line in found] == ["long:", "deep:"]
