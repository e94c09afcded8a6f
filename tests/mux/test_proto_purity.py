"""dockyard_mux.proto is sans-IO: standard library only, no asyncio, no sockets, no clock reads.

Checked on the source (import-linter cannot forbid standard-library modules), so adding such an import to the core
fails here with the module and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import dockyard_mux.proto

PROTO = Path(dockyard_mux.proto.__file__).parent
ALLOWED = {"__future__", "dataclasses", "enum", "math", "struct", "typing"}


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.append((node.lineno, node.module))
    return found


def test_proto_imports_only_pure_stdlib_modules() -> None:
    files = sorted(PROTO.glob("*.py"))
    assert len(files) >= 8
    bad = [
        f"{path.name}:{line} imports {module}"
        for path in files
        for line, module in imports(path)
        if module.split(".")[0] not in ALLOWED and not module.startswith("dockyard_mux.proto")
    ]
    assert bad == []
