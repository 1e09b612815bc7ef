"""The shape of the code, checked: layers that only point down, and the registry as the only list of tasks.

The layer order (bottom first) is docs/architecture.md's; a module may import its own room and any room of a
lower layer, never a room of its own layer or above. Each failure names the file and line of the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

from genlab.cli.commands import COMMANDS
from genlab.tasks import TASKS

ROOT = Path(__file__).resolve().parent.parent / "genlab"

# Bottom first. Rooms on one line are siblings: neither imports the other.
LAYERS = [
    ("errors", "version"),  # the one exception type every layer raises | genlab's version number
    ("io",),  # file formats: JSON/YAML, safetensors, images, WAV, tokenizers — nothing about models or runs
    ("core", "models"),  # run directories, recipes, the trainer loop | nn.Modules and decoding
    ("data", "peft", "interop"),  # data sets | LoRA and adapters | Hugging Face and ONNX interchange
    ("evaluation",),  # metrics, evaluator nets, evaluation protocols
    ("tasks",),  # the Task contract, the registry, one folder per task
    ("api",),  # genlab.load / genlab.train
    ("serve", "sweep"),  # HTTP server | hyperparameter search
    ("cli",),
    ("__main__",),
]
LEVEL = {room: level for level, rooms in enumerate(LAYERS) for room in rooms}
BUILDS_ON = {  # task -> the tasks it may import
    "finetune": {"lm"},
    "audio": {"gan"},
    "video": {"flow"},
    "pix2pix": {"gan"},
    "vqgan": {"flow"},
    "vq_dalle": {"vqgan", "flow"},
    "chorale": {"folk"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def room(module: str) -> str:
    """genlab.core.run -> core; genlab -> the package's face, above everything."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "genlab"


def imports(path: Path) -> list[tuple[str, int, bool, list[str]]]:
    """(imported genlab module, line, at module level?, names imported from it) for every import in a file."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            pairs = [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from genlab.x import y` imports the module genlab.x.y when y is one
            pairs = [
                (f"{node.module}.{a.name}", []) if f"{node.module}.{a.name}" in MODULES else (node.module, [a.name])
                for a in node.names
            ]
        else:
            continue
        found += [
            (name, node.lineno, id(node) in top_level, names)
            for name, names in pairs
            if name == "genlab" or name.startswith("genlab.")
        ]
    return found


def imports_by_name(path: Path) -> list[tuple[str, int]]:
    """(genlab module, line) for every string naming a genlab module in a file that uses importlib: the
    modules it may load by name (`importlib.import_module("genlab.cli.commands")`)."""
    source = path.read_text()
    if "import_module" not in source:
        return []
    return [
        (node.value, node.lineno)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and node.value in MODULES and node.value.startswith("genlab.")
    ]


GRAPH = {
    name: sorted({m for m, *_ in imports(path)} | {m for m, _ in imports_by_name(path)})
    for name, path in MODULES.items()
}
# Loading a module by name keeps torch out of `import genlab` and `genlab --help` / `--version` (under a second);
# anywhere else it would only hide an arrow from these tests, so these two places alone may do it.
LOADS_BY_NAME = {"genlab", "genlab.cli.parser"}


def where(module: str, line: int) -> str:
    return f"{MODULES[module].relative_to(ROOT.parent)}:{line}"


def test_every_room_has_a_layer():
    assert {room(m) for m in MODULES} - {"genlab"} <= set(LEVEL)


def test_imports_point_down_the_layers():
    wrong = []
    for name, path in MODULES.items():
        source = room(name)
        if source == "genlab":  # the package's face re-exports the API
            continue
        for dep, line, _, _ in imports(path):
            target = room(dep)
            if target == source:
                continue
            if target == "genlab" or LEVEL[target] >= LEVEL[source]:
                kind = "sideways" if target != "genlab" and LEVEL[target] == LEVEL[source] else "up"
                wrong.append(f"{where(name, line)} imports {dep} ({source} -> {target}: {kind})")
    assert wrong == []


def test_only_the_package_face_and_the_cli_parser_load_modules_by_name_and_those_point_down():
    by_name = {name: imports_by_name(path) for name, path in MODULES.items()}
    assert {name for name, found in by_name.items() if found} == LOADS_BY_NAME
    wrong = [
        f"{where(name, line)} loads {dep} by name"
        for name, found in by_name.items()
        for dep, line in found
        if name != "genlab" and room(dep) != room(name) and LEVEL[room(dep)] >= LEVEL[room(name)]
    ]
    assert wrong == []


def test_no_genlab_import_inside_a_function():
    lazy = [
        f"{where(name, line)} imports {m}"
        for name, path in MODULES.items()
        for m, line, top, _ in imports(path)
        if not top
    ]
    assert lazy == []


def test_no_private_name_is_imported_from_another_module():
    private = [
        f"{where(name, line)} imports {n} from {m}"
        for name, path in MODULES.items()
        for m, line, _, names in imports(path)
        for n in names
        if n.startswith("_") and not n.endswith("__") and m != name  # a dunder (__version__) is public
    ]
    assert private == []


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in GRAPH.get(module, []):
            if dep == "genlab" or dep not in MODULES:
                continue
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(dep) :] + [dep]))
            if dep not in state:
                visit(dep, path + [dep])
        state[module] = 2

    for module in MODULES:
        if module not in state:
            visit(module, [module])


def test_tasks_import_the_contract_and_only_the_tasks_they_build_on():
    crossing = []
    for name, path in MODULES.items():
        parts = name.split(".")
        if len(parts) < 4 or parts[1] != "tasks":  # genlab.tasks.<task>.<module>
            continue
        own = parts[2]
        for dep, line, _, _ in imports(path):
            dep_parts = dep.split(".")
            if dep_parts[:2] != ["genlab", "tasks"] or dep == "genlab.tasks.contract":
                continue
            other = dep_parts[2] if len(dep_parts) > 2 else "the registry"
            if other not in TASKS or (other != own and other not in BUILDS_ON.get(own, set())):
                crossing.append(f"{where(name, line)} imports {dep}")
    assert crossing == []


def test_every_task_lives_in_its_own_folder_and_the_registry_lists_them_all():
    folders = {p.parent.name for p in (ROOT / "tasks").glob("*/__init__.py")}
    assert folders == set(TASKS)


def test_the_cli_names_no_task():
    cli = [name for name in MODULES if room(name) == "cli"]
    assert len(cli) > 1  # the package, its parser and its commands
    for name in cli:
        tree = ast.parse(MODULES[name].read_text())
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        # a command's own name may also be a task's (`genlab chat` talks to any run whose handle can reply)
        assert not (strings - set(COMMANDS)) & set(TASKS), name
        assert not [m for m in GRAPH[name] if m.startswith("genlab.tasks.")], name
