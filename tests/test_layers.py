"""The domain's allow-list, which import-linter cannot express: standard library and attrs."""

import ast
import sys
from pathlib import Path

ALLOWED = set(sys.stdlib_module_names) | {"__future__", "attrs", "attr", "domain"}
ROOT = Path(__file__).resolve().parent.parent


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_domain_imports_only_the_standard_library_and_attrs() -> None:
    files = sorted((ROOT / "domain").rglob("*.py"))
    assert files
    offending = {str(f.relative_to(ROOT)): imported_roots(f) - ALLOWED for f in files}
    assert {f: bad for f, bad in offending.items() if bad} == {}
