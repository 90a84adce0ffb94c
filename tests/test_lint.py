"""The code is ruff- and mypy-clean: checked in the one test run CI makes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "cellctl", "tests",
                          "benchmarks", "migrations", "doc"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_is_clean(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr


def _imported_modules(path: Path) -> set[str]:
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_command_imports_another():
    """What two commands share lives one floor down (cellctl.cells, .mappings, ...);
    the shared floors import no command, and benchmarks no command internals."""
    ops = ROOT / "cellctl" / "ops"
    commands = {p.stem if p.is_file() else p.name: p for p in ops.iterdir()
                if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    assert {"cells", "hosts", "setup", "map_instances"} <= set(commands)
    crossing = []
    for name, place in commands.items():
        files = [place] if place.is_file() else sorted(place.rglob("*.py"))
        for path in files:
            for module in _imported_modules(path):
                other = module.split(".")[2] if module.startswith("cellctl.ops.") else None
                if other is not None and other != name and other in commands:
                    crossing.append(f"{path.relative_to(ROOT)} imports {module}")
    below = [p for floor in ("cells", "mappings", "writes", "liveness", "tables", "ironic")
             for p in sorted((ROOT / "cellctl" / floor).rglob("*.py"))]
    for path in below + sorted((ROOT / "benchmarks").glob("*.py")):
        crossing += [f"{path.relative_to(ROOT)} imports {module}"
                     for module in _imported_modules(path) if module.startswith("cellctl.ops")]
    assert crossing == []


def test_operations_name_their_exit_codes():
    """No bare exit-code literal in a command: each has named codes (an IntEnum or
    module constants), documented where they are defined."""
    import ast

    # the shared look-ups that record a not-found error: where their code goes
    code_at = {"load_cell": 3, "resolve_cell_uuid": 3, "lookup_cell_uuid": 2,
               "cell_not_found": 2}
    bare = []
    for floor in ("ops", "cells", "mappings"):
        for path in sorted((ROOT / "cellctl" / floor).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                codes: list[ast.expr] = []
                if isinstance(node, ast.Call):
                    called = (node.func.attr if isinstance(node.func, ast.Attribute)
                              else getattr(node.func, "id", ""))
                    if called == "error" and len(node.args) == 2:
                        codes.append(node.args[1])
                    if called in code_at and len(node.args) > code_at[called]:
                        codes.append(node.args[code_at[called]])
                    codes += [k.value for k in node.keywords if k.arg == "not_found_code"]
                elif isinstance(node, ast.Assign) and any(
                        isinstance(t, ast.Attribute) and t.attr == "code" for t in node.targets):
                    codes.append(node.value)
                bare += [f"{path.relative_to(ROOT)}:{code.lineno}" for code in codes
                         if isinstance(code, ast.Constant) and code.value != 0]
    assert bare == []


def _module_graph() -> dict[str, set[str]]:
    """Each cellctl module -> the cellctl modules it imports: at the top, inside
    functions and under TYPE_CHECKING alike (a package counts as its ``__init__``)."""
    import ast

    modules: dict[str, Path] = {}
    for path in (ROOT / "cellctl").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, *([base] if base else [])])
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    imported.add(full if full in modules else base)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        graph[name] = {module for module in imported if module in modules} - {name}
    return graph


def test_no_import_cycle():
    """No cellctl module imports, however indirectly, a module that imports it: imports
    inside functions and for type checking count too."""
    graph = _module_graph()
    cycles: list[list[str]] = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append([*path[path.index(module):], module])
            return
        if module in done:
            return
        for imported in sorted(graph[module]):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert [" -> ".join(cycle) for cycle in cycles] == []


def test_no_needless_local_imports():
    """A module that imports SQLAlchemy when it is loaded gains nothing at start-up by
    importing inside its functions: it imports at the top, unless a comment (on the
    line or the line before) says why not. Elsewhere imports are deferred where they
    keep start-up fast (``--help``, ``list_cells``: doc/contributor/benchmarks.rst)."""
    import ast

    needless = []
    for path in sorted((ROOT / "cellctl").rglob("*.py")):
        source = path.read_text()
        tree = ast.parse(source)
        loaded = {name for node in tree.body for name in (
            [node.module or ""] if isinstance(node, ast.ImportFrom)
            else [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])}
        if not any(name.split(".")[0] == "sqlalchemy" for name in loaded):
            continue
        lines = source.splitlines()
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    said = "#" in lines[node.lineno - 1] or (
                        node.lineno > 1 and lines[node.lineno - 2].strip().startswith("#"))
                    if not said:
                        needless.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert sorted(set(needless)) == []


def test_lock_names_in_one_place():
    """Every advisory lock a writer takes is named in cellctl.writes.locks: no
    ``lock=`` argument spells a name itself."""
    import ast

    spelled = []
    for path in sorted((ROOT / "cellctl").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                spelled += [f"{path.relative_to(ROOT)}:{k.value.lineno}"
                            for k in node.keywords if k.arg == "lock"
                            and isinstance(k.value, ast.Constant | ast.JoinedStr)]
    assert spelled == []
