"""The test suite's own layout (STYLE.md, Tests): shared builders live in tests/factories.py and
helper modules, fixtures in conftest.py; no test module imports another test module or conftest."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent


def _imported_modules(tree: ast.Module) -> list[str]:
    """Every module an import statement names, `from tests import test_x` counted as tests.test_x."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            if node.module == "tests":
                names += [f"tests.{alias.name}" for alias in node.names]
    return names


def test_no_test_module_imports_another_or_conftest() -> None:
    offending = [
        f"{path.name} imports {module}"
        for path in sorted(TESTS.glob("test_*.py"))
        for module in _imported_modules(ast.parse(path.read_text(), filename=str(path)))
        if module == "tests.conftest" or module.startswith("tests.test_")
    ]
    assert offending == [], "move shared builders to tests/factories.py or a helper module:\n" + "\n".join(offending)
