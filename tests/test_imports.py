"""The package's import graph (every import statement, module level and inside functions,
read with ``ast``) has no circle: a module never imports, even lazily, a module that
imports it back. A package's ``__init__`` importing its own submodules (registration) is
an edge like any other; a submodule reaching its parent package only for a sibling
(``from nicviz.codecs import weights``) is an edge to that sibling."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "nicviz"


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def graph() -> dict[str, set[str]]:
    mods = _modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                    pkg = pkg[: len(pkg) - node.level + 1]
                    base = ".".join([*pkg, base] if base else pkg)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != name and t.startswith("nicviz"):
                    edges[name].add(t)
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(edges[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(edges):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_the_package_has_no_import_circle():
    edges = graph()
    assert len(edges) > 40 and "nicviz.codecs.overfitted.codec" in edges["nicviz.codecs.overfitted"]
    cycle = _cycle(edges)
    assert cycle is None, " -> ".join(cycle)


def test_the_check_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_module_is_over_400_lines():
    """Small modules: none of the package's modules passes 400 lines (``reference_data``
    holds data tables, not code)."""
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py")
            if "reference_data" not in p.parts and (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long, long


def _reads_nicviz_setting(tree: ast.AST) -> list[str]:
    """``NICVIZ_*`` names read from the environment: ``os.environ.get/[...]``, ``os.getenv``."""
    found = []
    for node in ast.walk(tree):
        arg = None
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            f = node.func
            if isinstance(f, ast.Attribute) and (f.attr == "getenv" or (
                    f.attr in ("get", "setdefault") and isinstance(f.value, ast.Attribute) and f.value.attr == "environ")):
                arg = node.args[0].value
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and \
                isinstance(node.value, ast.Attribute) and node.value.attr == "environ" and \
                isinstance(node.slice, ast.Constant):
            arg = node.slice.value
        if isinstance(arg, str) and arg.startswith("NICVIZ_"):
            found.append(arg)
    return found


def test_every_nicviz_setting_is_read_in_the_settings_module_only():
    root = PKG.parent
    readers = {str(p.relative_to(root)): names for p in [*PKG.rglob("*.py"), *(root / "app_pages").glob("*.py"),
                                                         root / "app.py"]
               if (names := _reads_nicviz_setting(ast.parse(p.read_text())))}
    assert set(readers) == {"nicviz/settings.py"}, readers
    assert _reads_nicviz_setting(ast.parse("import os\nos.environ.get('NICVIZ_X')\nos.getenv('NICVIZ_Y')\n"
                                            "os.environ['NICVIZ_Z']\nos.environ['NICVIZ_W'] = '1'")) == \
        ["NICVIZ_X", "NICVIZ_Y", "NICVIZ_Z"]  # the check sees a read
