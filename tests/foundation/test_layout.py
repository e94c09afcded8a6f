"""Guards for the repository layout: three source roots, one import package each, nothing shadowing stdlib."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = {"operator": "dockyard_operator", "tunnel": "dockyard_tunnel", "mux": "dockyard_mux"}


@pytest.mark.parametrize("root", sorted(SOURCE_ROOTS))
def test_source_root_is_not_a_package(root: str) -> None:
    """An operator/__init__.py would shadow the standard library's `operator` module for every importer."""
    assert not (ROOT / root / "__init__.py").exists(), f"{root}/__init__.py turns a source root into a package"


@pytest.mark.parametrize(("root", "package"), sorted(SOURCE_ROOTS.items()))
def test_source_root_holds_exactly_one_import_package(root: str, package: str) -> None:
    packages = sorted(p.name for p in (ROOT / root).iterdir() if (p / "__init__.py").exists())
    assert packages == [package]
    assert (ROOT / root / package / "py.typed").exists(), "PEP 561 marker missing: mypy users lose our types"


def test_stdlib_operator_is_not_shadowed_from_the_repository_root() -> None:
    """Run Python as a developer does (cwd = repo root, source roots on the path); stdlib names still win."""
    code = (
        "import operator, collections, sys; "
        "assert operator.itemgetter(1)([0, 7]) == 7; "
        "assert 'site-packages' not in operator.__file__ if hasattr(operator, '__file__') else True; "
        "import dockyard_operator, dockyard_tunnel, dockyard_mux; print(operator.__name__)"
    )
    env_path = ":".join(str(ROOT / r) for r in SOURCE_ROOTS)
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT}:{env_path}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "operator"


def test_no_module_is_named_after_a_stdlib_module() -> None:
    """kopf's rule: `typedefs.py`, never `types.py` — a local name that hides stdlib breaks imports subtly."""
    offenders = []
    for root, package in SOURCE_ROOTS.items():
        for path in (ROOT / root / package).rglob("*.py"):
            name = path.stem if path.stem != "__init__" else path.parent.name
            if name in sys.stdlib_module_names:
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_tests_tree_has_no_init_files() -> None:
    """With --import-mode=importlib, tests/**/__init__.py would make test packages that can shadow ours."""
    assert sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("__init__.py")) == []


def test_one_distribution_with_both_console_scripts() -> None:
    dist = importlib.metadata.distribution("dockyard")
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts == {
        "dockyard": "dockyard_operator.cli:main",
        "dockyard-agent": "dockyard_tunnel.agent.cli:main",
        "kubectl-dockyard": "dockyard_operator.cli:main",  # the kubectl plugin (kubectl dockyard ...)
    }
