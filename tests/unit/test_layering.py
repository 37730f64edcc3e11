"""The package layout is the architecture: this test keeps it true (docs/architecture.md).

Every module under ``otelkit/`` is parsed with :mod:`ast`; every ``import``/``from … import``
counts, at module level or inside a function (lazy imports are imports too). Imports under
``if TYPE_CHECKING:`` never run: they count for the layer rules and the private-name rule, not for
cycles. Imports done with :func:`importlib.import_module` (``otelkit.__getattr__``) are not seen.

Layers (the first package below ``otelkit`` decides):

- ``ops`` (``otelkit.ops``): spec in, files out. It may import ``otelkit.errors``, the ``otelkit``
  package itself and ``otelkit.ops``; never OpenTelemetry (any ``opentelemetry`` package).
- ``local`` (``otelkit.local``): subprocesses. It may import ``ops`` and the public modules; never
  ``otelkit.cli``, ``otelkit._runtime`` nor ``otelkit._launcher``.
- ``cli`` (``otelkit.cli``): may import anything.
- runtime: everything else (``otelkit._runtime``, ``otelkit._launcher``, ``otelkit.health``,
  ``otelkit.testing`` and the public top-level modules): it runs in the user's process and never
  imports ``ops``, ``local`` or ``cli``.

Private names, the exact rule: a module-level name starting with one underscore (``_state``, not
``__version__``) belongs to the module that defines it. No other module reads it — neither with
``from M import _name`` nor as ``M._name`` on an imported module — whatever package it is in. A
private *module or package* (``otelkit._runtime``, ``otelkit._launcher._boot``) may be imported by
any module inside the package that contains it (``otelkit._runtime`` by all of otelkit), never from
outside it.

Size: a module over :data:`MAX_LINES` lines fails unless :data:`LONG_MODULES` names it with a reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import otelkit

ROOT = Path(otelkit.__file__).resolve().parent
MAX_LINES = 500
LONG_MODULES: dict[str, str] = {}
"""Modules allowed past :data:`MAX_LINES`, each with the reason it is one piece."""


@dataclass(frozen=True)
class Import:
    """One imported module (``target``), and the names read from it (``from target import names``)."""

    source: str
    target: str
    names: tuple[str, ...]
    line: int
    type_only: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def _package(module: str) -> str:
    """The package a module belongs to (a package's ``__init__`` belongs to the package itself)."""
    path = MODULES[module]
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = _package(module).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                for child in node.body:
                    inside.update(id(n) for n in ast.walk(child))
    return inside


def _imports(module: str) -> Iterator[Import]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    type_only = _type_checking_nodes(tree)
    for node in ast.walk(tree):
        guarded = id(node) in type_only
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, (), node.lineno, guarded)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            names: list[str] = []
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in MODULES:  # ``from package import module``
                    yield Import(module, submodule, (), node.lineno, guarded)
                else:
                    names.append(alias.name)
            if names or target not in MODULES:
                yield Import(module, target, tuple(names), node.lineno, guarded)


IMPORTS = {module: list(_imports(module)) for module in MODULES}


def _internal(imp: Import) -> bool:
    return imp.target == "otelkit" or imp.target.startswith("otelkit.")


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("ops", "local", "cli"):
        return parts[1]
    return "runtime"


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _cycles() -> list[list[str]]:
    """Strongly connected components of the run-time import graph with more than one module (Tarjan)."""
    graph = {
        m: sorted({i.target for i in IMPORTS[m] if _internal(i) and not i.type_only and i.target in MODULES})
        for m in MODULES
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _where(imp: Import) -> str:
    return f"{imp.source} (line {imp.line}) imports {imp.target}" + (f": {', '.join(imp.names)}" if imp.names else "")


def test_layering_has_no_import_cycle() -> None:
    cycles = _cycles()
    report = []
    for component in cycles:
        edges = [
            _where(i)
            for m in component
            for i in IMPORTS[m]
            if i.target in component and not i.type_only and i.target != m
        ]
        report.append(" <-> ".join(component) + "\n    " + "\n    ".join(edges))
    assert not cycles, "import cycles:\n" + "\n".join(report)


def test_layering_runtime_never_imports_ops_local_or_cli() -> None:
    bad = [
        _where(i)
        for m in MODULES
        if _layer(m) == "runtime"
        for i in IMPORTS[m]
        if any(_under(i.target, f"otelkit.{layer}") for layer in ("ops", "local", "cli"))
    ]
    assert not bad, "runtime code imports a layer below it:\n" + "\n".join(bad)


def test_layering_ops_imports_no_opentelemetry_and_no_runtime() -> None:
    allowed = ("otelkit.errors", "otelkit.ops")
    bad = [
        _where(i)
        for m in MODULES
        if _layer(m) == "ops"
        for i in IMPORTS[m]
        if _under(i.target, "opentelemetry")
        or (_internal(i) and i.target != "otelkit" and not any(_under(i.target, a) for a in allowed))
    ]
    assert not bad, "ops imports OpenTelemetry or code outside ops:\n" + "\n".join(bad)


def test_layering_local_never_imports_cli_or_runtime() -> None:
    forbidden = ("otelkit.cli", "otelkit._runtime", "otelkit._launcher")
    bad = [
        _where(i)
        for m in MODULES
        if _layer(m) == "local"
        for i in IMPORTS[m]
        if any(_under(i.target, f) for f in forbidden)
    ]
    assert not bad, "local imports the CLI or the runtime:\n" + "\n".join(bad)


def test_layering_modules_stay_under_500_lines() -> None:
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in MODULES.items()}
    long = [f"{m}: {n} lines" for m, n in sizes.items() if n > MAX_LINES and m not in LONG_MODULES]
    assert not long, f"modules over {MAX_LINES} lines (split them, or name them in LONG_MODULES with a reason):\n" + (
        "\n".join(long)
    )
    stale = [m for m in LONG_MODULES if m not in sizes or sizes[m] <= MAX_LINES]
    assert not stale, f"LONG_MODULES names modules that are gone or short now: {stale}"


def test_layering_no_test_only_code_in_the_package() -> None:
    """Resets and helpers for tests live in tests/ (fixtures), never in otelkit/."""
    bad = [
        f"{m} (line {node.lineno}): {node.name}"
        for m, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.rstrip("_").endswith("for_tests")
    ]
    assert not bad, "test-only functions in otelkit/:\n" + "\n".join(bad)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_module_owner(module: str) -> str | None:
    """The package a private module path is private to (its deepest ``_segment``'s parent), or None."""
    parts = module.split(".")
    owner = None
    for i, part in enumerate(parts):
        if _private(part):
            owner = ".".join(parts[:i])
    return owner


def _module_aliases(module: str) -> dict[str, str]:
    """Local names bound to otelkit modules in ``module`` (``from otelkit._runtime import state``)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            for alias in node.names:
                if f"{target}.{alias.name}" in MODULES:
                    aliases[alias.asname or alias.name] = f"{target}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name in MODULES:
                    aliases[alias.asname] = alias.name
    return aliases


def _private_reads(module: str) -> Iterator[str]:
    for imp in IMPORTS[module]:
        if not _internal(imp):
            continue
        owner = _private_module_owner(imp.target)
        if owner is not None and not _under(module, owner):
            yield f"{_where(imp)} (a module private to {owner})"
        for name in imp.names:
            if _private(name) and imp.target != module:
                yield f"{_where(imp)} (the private name {name})"
    aliases = _module_aliases(module)
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and _private(node.attr)
            and f"{aliases[node.value.id]}.{node.attr}" not in MODULES
        ):
            yield f"{module} (line {node.lineno}) reads {aliases[node.value.id]}.{node.attr}"


def test_layering_no_module_reads_another_modules_private_names() -> None:
    bad = [line for m in MODULES for line in _private_reads(m)]
    assert not bad, "private names read from another module:\n" + "\n".join(bad)


def test_layering_public_class_names_are_unique() -> None:
    """Two unrelated classes under one name (the collector's Backend and the Go build's) confuse
    readers and imports; each public class name is defined once in the package."""
    seen: dict[str, list[str]] = {}
    for m, path in MODULES.items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                seen.setdefault(node.name, []).append(m)
    twice = {name: where for name, where in seen.items() if len(where) > 1}
    assert not twice, f"public class names defined more than once: {twice}"
