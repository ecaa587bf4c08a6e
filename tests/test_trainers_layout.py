"""The layout of ``trainers/`` (ARCHITECTURE.md): library modules below the entry points, no import circle.

Imports are read with ``ast`` (nothing is imported), so a function-level import counts like a top-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TRAINERS = Path(__file__).resolve().parents[1] / "trainers"

#: the console-script / program modules; everything else in trainers/ is library
ENTRY_POINTS = {"cli", "pretrain", "fewshot"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(TRAINERS).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts) or "__init__"


def _resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The trainers-internal modules (dotted, relative to trainers/) that ``node`` in ``module`` imports."""
    out = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.startswith("trainers."):
                out.append(alias.name.removeprefix("trainers."))
        return out
    if node.level == 0:
        if node.module and node.module.startswith("trainers."):
            return [node.module.removeprefix("trainers.")]
        if node.module == "trainers":
            return [alias.name for alias in node.names]
        return []
    package = module.split(".")[:-1] if module != "__init__" else []
    base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
    target = ".".join([*base, *(node.module.split(".") if node.module else [])])
    if node.module:
        return [target]
    return [".".join([*base, alias.name]) for alias in node.names]


def import_graph() -> dict[str, set[str]]:
    """``{module: {trainers modules it imports}}`` for every ``.py`` under trainers/ (the metric script excluded)."""
    files = [p for p in TRAINERS.rglob("*.py") if "ldnet_uie" not in p.parts]
    modules = {_module_name(p): p for p in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps.update(d for d in _resolve(name, node) if d in modules and d != name)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (as a path ``[a, b, ..., a]``), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_graph_is_read_correctly():
    graph = import_graph()
    assert {"cli", "pretrain", "fewshot", "loading", "data", "trainer", "teacher", "collator"} <= set(graph)
    assert {"loading", "trainer", "teacher", "augmented"} <= graph["cli"]
    assert graph["fewshot"] >= {"cli", "loading"}  # ldnet-fewshot runs ldnet-train
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle():
    assert find_cycle(import_graph()) is None


@pytest.mark.parametrize("module", sorted(set(import_graph()) - ENTRY_POINTS))
def test_library_modules_never_import_entry_points(module):
    assert not (import_graph()[module] & ENTRY_POINTS), f"trainers/{module} imports an entry point"


def test_one_model_loader():
    """Every model loader of trainers/ is the one in loading.py (the others are re-exports of it)."""
    from trainers import cli, fewshot, loading, teacher

    assert teacher.load_model_and_processor is loading.load_model_and_processor
    assert cli.build_model_and_processor is loading.build_model_and_processor
    assert fewshot.load_checkpoint is loading.load_checkpoint
    calls = {
        p.name
        for p in TRAINERS.glob("*.py")
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr in ("from_pretrained", "from_encoder")
        and isinstance(node.value, ast.Name) and node.value.id in ("LDNetModel", "LDNetProcessor")
    }
    assert calls == {"loading.py"}


def test_no_function_level_imports_in_entry_points():
    """Entry points import at the top (optional dependencies aside: PyYAML for YAML recipes)."""
    late = []
    for name in sorted(ENTRY_POINTS):
        tree = ast.parse((TRAINERS / f"{name}.py").read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        names = [a.name for a in node.names]
                        if names != ["yaml"]:
                            late.append(f"{name}.{fn.name}: {names}")
    assert late == []
