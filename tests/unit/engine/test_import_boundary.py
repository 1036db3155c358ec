"""The engine stays pure: every import under ampscaler/engine is stdlib-safe or the engine's own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ampscaler.engine

ENGINE_DIR = Path(ampscaler.engine.__file__).parent
ALLOWED_STDLIB = {
    "__future__",
    "collections",
    "dataclasses",
    "math",
    "typing",
    "enum",
    "functools",
    "itertools",
    "operator",
    "fractions",
    "decimal",
    "abc",
}
ALLOWED_PREFIXES = ("ampscaler.model", "ampscaler.engine")
# Names that would give the engine a clock, randomness or I/O even from an allowed module.
FORBIDDEN_NAMES = {"now", "time", "random", "environ", "open", "datetime"}


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: use absolute imports"
            found.append((node.module or "", [alias.name for alias in node.names]))
    return found


ENGINE_FILES = sorted(ENGINE_DIR.glob("*.py"))


def test_engine_has_the_expected_modules() -> None:
    names = {p.stem for p in ENGINE_FILES}
    assert {"types", "pods", "proposals", "behavior", "reasons", "decide"} <= names


@pytest.mark.parametrize("path", ENGINE_FILES, ids=[p.name for p in ENGINE_FILES])
def test_engine_module_imports_only_the_allow_list(path: Path) -> None:
    for module, names in _imports(path):
        top = module.split(".")[0]
        assert top in ALLOWED_STDLIB or module.startswith(ALLOWED_PREFIXES), f"{path.name} imports {module}"
        assert not FORBIDDEN_NAMES.intersection(names), f"{path.name} imports {names} from {module}"


@pytest.mark.parametrize("path", ENGINE_FILES, ids=[p.name for p in ENGINE_FILES])
def test_engine_module_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            assert node.attr not in {"now", "utcnow", "time_ns", "monotonic", "perf_counter"}, (
                f"{path.name}:{node.lineno} reads a clock ({node.attr})"
            )
