"""The shape of the code, checked: data flows one way and the registry is the only list of tasks.

- no import cycle between genlab's modules, and no genlab import hidden inside a function;
- shared packages (core, data, models, peft, evaluation, io) never import a task, the API or the CLI;
- a task imports another task only where it builds on it (finetune starts from lm runs);
- the CLI names no task.
"""
from __future__ import annotations

import ast
from pathlib import Path

from genlab.tasks import TASKS

ROOT = Path(__file__).resolve().parent.parent / "genlab"
SHARED = ("genlab.core", "genlab.data", "genlab.models", "genlab.peft", "genlab.evaluation", "genlab.io",
          "genlab.errors")
TOP = ("genlab.api", "genlab.cli", "genlab.tasks", "genlab.serve")
BUILDS_ON = {"finetune": {"lm"}, "audio": {"gan"}}  # task -> the tasks it may import


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported genlab module, at module level?) for every import in a file."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from genlab.x import y` imports the module genlab.x.y when y is one
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                     for a in node.names]
        found += [(n, id(node) in top_level) for n in names if n == "genlab" or n.startswith("genlab.")]
    return found


GRAPH = {name: sorted({m for m, _ in imports(path)}) for name, path in MODULES.items()}


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_no_genlab_import_inside_a_function():
    lazy = [(name, m) for name, path in MODULES.items() for m, top in imports(path) if not top]
    assert lazy == []


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in GRAPH.get(module, []):
            if dep == "genlab" or dep not in MODULES:
                continue
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(dep):] + [dep]))
            if dep not in state:
                visit(dep, path + [dep])
        state[module] = 2

    for module in MODULES:
        if module not in state:
            visit(module, [module])


def test_shared_packages_never_import_tasks_api_or_cli():
    upward = [(name, dep) for name, deps in GRAPH.items() if within(name, SHARED)
              for dep in deps if within(dep, TOP) or dep == "genlab"]
    assert upward == []


def test_tasks_import_other_tasks_only_where_they_build_on_them():
    crossing = []
    for name, deps in GRAPH.items():
        if not name.startswith("genlab.tasks."):
            continue
        own = name.split(".")[2]
        for dep in deps:
            if dep.startswith("genlab.tasks.") and (other := dep.split(".")[2]) != own:
                if other not in BUILDS_ON.get(own, set()):
                    crossing.append((name, dep))
    assert crossing == []


def test_every_task_lives_in_its_own_folder_and_the_registry_lists_them_all():
    folders = {p.parent.name for p in (ROOT / "tasks").glob("*/__init__.py")}
    assert folders == set(TASKS)


def test_the_cli_names_no_task():
    tree = ast.parse((ROOT / "cli.py").read_text())
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert not strings & set(TASKS)
    assert not [m for m in GRAPH["genlab.cli"] if m.startswith("genlab.tasks.")]
