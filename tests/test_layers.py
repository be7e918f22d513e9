"""The layer contract of DESIGN.md, enforced on every `make test`.

    core  <-  crawler, index  <-  jobs, dashboard, api

- core imports nothing above it;
- crawler and index import core only, never each other (nor anything above them);
- dashboard and api import core, index and the jobs facade (jobs/facade.py) only: never the
  rest of jobs/, never crawler/, never each other;
- no cycles between the packages.

Every import counts: at module level, inside functions, under ``if TYPE_CHECKING:``, and
``importlib.import_module`` with a literal name. The imports are read with ``ast`` from the
source, so nothing is imported to check them.

An import that breaks a rule must be fixed (move the helper down, or go through the facade),
or listed in ``EXCEPTIONS`` below with the reason it stays. An exception that no longer
matches an import fails too, so the list only shrinks.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "crawler", "index", "jobs", "api", "dashboard")
FACADE = "jobs.facade"

# What each package may import from the others (its own modules are always allowed).
# A name allows that module and everything under it.
ALLOWED: dict[str, tuple[str, ...]] = {
    "core": (),
    "crawler": ("core",),
    "index": ("core",),
    "jobs": ("core", "crawler", "index", "api"),  # jobs -> api: see EXCEPTIONS
    "dashboard": ("core", "index", FACADE),
    "api": ("core", "index", FACADE),
}

# Named, explained exceptions: (importing module, imported module) -> why it stays.
EXCEPTIONS: dict[tuple[str, str], str] = {
    # `veille api` is the composition root that serves the API app: the command has to build
    # it. api/ reaches jobs/ only through jobs.facade, so the two packages form a cycle at
    # the package level (jobs -> api -> jobs.facade) but not between modules. Removing it
    # means moving the CLI out of jobs/ (a package of its own above the three top layers).
    ("jobs.cli.api", "api.app"): "the `veille api` command serves the API app",
}


# DESIGN.md also wants no cycle between modules, inside a package too. A cycle that cannot be
# untangled at once is listed here with what closes it; any other cycle fails.
KNOWN_MODULE_CYCLES: dict[frozenset[str], str] = {}


@dataclass(frozen=True)
class Import:
    path: str  # relative to the repository root
    line: int
    importer: str  # dotted module name
    imported: str  # dotted module (or module.name) imported

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}"


def _module_name(rel: str) -> str:
    parts = list(Path(rel).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _literal_import(call: ast.Call) -> str | None:
    """The module named by ``importlib.import_module("x.y")`` (or the leading literal part
    of an f-string), else None."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("import_module", "__import__") or not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values:
        head = arg.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            return head.value.rsplit(".", 1)[0] if "." in head.value else head.value
    return None


def imports_in(source: str, rel: str) -> list[Import]:
    """Every import in the source of file ``rel`` (a path from the repository root), wherever
    it is in the file."""
    importer = _module_name(rel)
    package = importer if rel.endswith("__init__.py") else importer.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source, filename=rel)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [
                module if alias.name == "*" else f"{module}.{alias.name}" for alias in node.names
            ]
        elif isinstance(node, ast.Call):
            literal = _literal_import(node)
            names = [literal] if literal else []
        found += [Import(rel, node.lineno, importer, name) for name in names]
    return found


def all_imports() -> list[Import]:
    return [
        imp
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for imp in imports_in(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
        if imp.imported.split(".")[0] in PACKAGES
    ]


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _excepted(imp: Import) -> tuple[str, str] | None:
    for importer, imported in EXCEPTIONS:
        if imp.importer == importer and _under(imp.imported, imported):
            return importer, imported
    return None


def layer_violations(imports: list[Import]) -> list[Import]:
    """Imports that break the allowed directions (EXCEPTIONS not counted)."""
    bad = []
    for imp in imports:
        source, target = imp.importer.split(".")[0], imp.imported.split(".")[0]
        if source == target or target not in PACKAGES or _excepted(imp):
            continue
        if not any(_under(imp.imported, allowed) for allowed in ALLOWED[source]):
            bad.append(imp)
    return bad


def package_cycles(imports: list[Import]) -> list[list[str]]:
    """Cycles in the graph of packages (EXCEPTIONS not counted), each as a closed path."""
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in imports:
        source, target = imp.importer.split(".")[0], imp.imported.split(".")[0]
        if source != target and target in PACKAGES and not _excepted(imp):
            graph[source].add(target)
    cycles = []
    for start in PACKAGES:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    cycles.append([*path, start])
                elif nxt not in path and nxt > start:  # each cycle once, from its least name
                    stack.append((nxt, [*path, nxt]))
    return cycles


def module_cycles(imports: list[Import], modules: set[str]) -> set[frozenset[str]]:
    """The groups of modules that import each other, directly or not (strongly connected
    components of more than one module)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in imports:
        target = imp.imported
        while target and target not in modules:  # "pkg.mod.name" -> "pkg.mod"
            target = target.rpartition(".")[0]
        # a package's __init__ imported by its own submodules is not a cycle worth naming
        if target and target != imp.importer and not imp.importer.startswith(target + "."):
            graph[imp.importer].add(target)

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    reachable = {m: reach(m) for m in modules}
    groups = set()
    for m in modules:
        group = frozenset({m} | {o for o in reachable[m] if m in reachable[o]})
        if len(group) > 1:
            groups.add(group)
    return groups


def all_modules() -> set[str]:
    return {
        _module_name(path.relative_to(ROOT).as_posix())
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }


def test_the_contract_sees_every_kind_of_import() -> None:
    """The checker itself: function-level, relative, TYPE_CHECKING and dynamic imports."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "import importlib\n"
        "if TYPE_CHECKING:\n"
        "    from crawler.news_sources import FeedState\n"
        "def page():\n"
        "    from jobs.digest import build_digest\n"
        "    import crawler.arxiv_crawl\n"
        "    return importlib.import_module('crawler.news_crawl')\n"
        "from .common import resources\n"
        "from jobs.facade import launch_job\n"
    )
    probe = imports_in(source, "dashboard/probe.py")
    bad = {(i.line, i.imported) for i in layer_violations(probe)}
    assert bad == {
        (4, "crawler.news_sources.FeedState"),
        (6, "jobs.digest.build_digest"),
        (7, "crawler.arxiv_crawl"),
        (8, "crawler.news_crawl"),
    }
    assert [i.imported for i in probe if i.line == 9] == ["dashboard.common.resources"]
    cycle = [Import("a.py", 1, "core.a", "index.b"), Import("b.py", 1, "index.b", "core.c")]
    assert package_cycles(cycle) == [["core", "index", "core"]]
    assert module_cycles(cycle, {"core.a", "core.c", "index.b"}) == set()
    loop = [*cycle, Import("c.py", 1, "core.c", "core.a.helper")]
    assert module_cycles(loop, {"core.a", "core.c", "index.b"}) == {
        frozenset({"core.a", "core.c", "index.b"})
    }


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    found = all_imports()
    assert len(found) > 100, "the checker found almost no imports: is it reading the tree?"
    return found


def test_layers_point_down_only(imports: list[Import]) -> None:
    """core <- crawler, index <- jobs, dashboard, api; dashboard and api through jobs.facade."""
    bad = layer_violations(imports)
    assert not bad, "imports that break the layer contract (DESIGN.md):\n" + "\n".join(
        map(str, bad)
    )


def test_no_cycles_between_packages(imports: list[Import]) -> None:
    cycles = package_cycles(imports)
    assert not cycles, "import cycles between packages:\n" + "\n".join(
        " -> ".join(c) for c in cycles
    )


def test_every_exception_is_still_needed(imports: list[Import]) -> None:
    used = {_excepted(imp) for imp in imports} - {None}
    stale = set(EXCEPTIONS) - used
    assert not stale, f"exceptions that match no import any more, remove them: {sorted(stale)}"


def test_no_new_cycles_between_modules(imports: list[Import]) -> None:
    cycles = module_cycles(imports, all_modules())
    new = [sorted(c) for c in cycles if c not in KNOWN_MODULE_CYCLES]
    assert not new, "modules that import each other (directly or not):\n" + "\n".join(
        " <-> ".join(c) for c in new
    )
    gone = [sorted(c) for c in KNOWN_MODULE_CYCLES if c not in cycles]
    assert not gone, f"known cycles that are gone (or changed), update KNOWN_MODULE_CYCLES: {gone}"
