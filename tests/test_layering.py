"""The module map of STYLE.md, enforced: who may import whom inside ftops."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "ftops"

ALLOWED: dict[str, set[str]] = {
    "diagnostics": set(),
    "config": {"diagnostics"},
    "datasets": {"diagnostics"},
    "state": {"diagnostics"},
    "providers": {"diagnostics", "datasets"},  # datasets: conversion (STYLE.md module map)
    "sandbox": {"diagnostics", "datasets"},
    "engine": {"diagnostics", "config", "datasets", "state", "providers"},
    "render": {"diagnostics", "engine", "config", "state"},
}


def _layer(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.ImportFrom) and node.level:
            continue  # relative imports stay inside their package
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for n in names:
            parts = n.split(".")
            if parts[0] == "ftops" and len(parts) > 1:
                out.add(parts[1])
    return out


def test_layers_import_only_what_the_module_map_allows() -> None:
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        layer = _layer(path)
        if layer not in ALLOWED:
            continue  # cli, workspace, starter, schemas: composition roots
        for dep in _imports(path) - ALLOWED[layer] - {layer}:
            bad.append(f"{path.relative_to(PKG)} imports ftops.{dep}")
    assert bad == []


def test_nothing_imports_the_cli() -> None:
    users = [p for p in PKG.rglob("*.py") if p.name != "cli.py" and "cli" in _imports(p)]
    assert users == []
