"""How the tests are laid out: shared helpers live in tests/support/ (or in fixtures of a
conftest.py), never in a test module another module imports. Importing a test module runs its
module-level code again under another name and drags its tests' imports along; pytest's
rootdir-relative module names make such imports break when a file moves."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _imported_modules(tree: ast.AST, package: str) -> set[str]:
    """Every module an import names, relative imports resolved against `package`."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            found.add(base)
            # `from tests.integration import test_x` names the module test_x too.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _test_module_imports(path: Path) -> list[str]:
    relative = path.relative_to(TESTS.parent)
    package = ".".join(relative.parent.parts)
    tree = ast.parse(path.read_text(), str(path))
    return sorted(
        f"{relative} imports {name}"
        for name in _imported_modules(tree, package)
        if name.rsplit(".", 1)[-1].startswith("test_")
    )


def test_no_module_imports_a_test_module() -> None:
    offenders = [line for path in TESTS.rglob("*.py") for line in _test_module_imports(path)]
    assert not offenders, "move shared helpers to tests/support/:\n" + "\n".join(offenders)


def test_the_check_sees_every_way_of_importing_a_test_module() -> None:
    names = _imported_modules(
        ast.parse(
            "import tests.unit.test_a\n"
            "from tests.integration.test_b import helper\n"
            "from tests.integration import test_c\n"
            "from .test_d import helper\n"
            "def f():\n    from tests.unit.test_e import x\n"
            # A test function imported elsewhere is collected there a second time: flagged too.
            "from tests.support.agent import test_tools\n"
        ),
        "tests.unit",
    )
    flagged = {name for name in names if name.rsplit(".", 1)[-1].startswith("test_")}
    assert flagged == {
        "tests.unit.test_a",
        "tests.integration.test_b",
        "tests.integration.test_c",
        "tests.unit.test_d",
        "tests.unit.test_e",
        "tests.support.agent.test_tools",
    }
