"""docs/architecture.md is the map of the package; these tests keep the map and the code equal.

They read the table of packages (what each may import) and the table of changes (which file to
open) from the document itself, and every import statement in jobauto/ (function-level ones
included, since a deferred import still ties two modules together).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "jobauto"
DOC = ROOT / "docs" / "architecture.md"
MAX_LINES = 400


def doc_table(heading: str) -> list[list[str]]:
    """The rows of the first Markdown table under `## heading` (header and rule dropped)."""
    text = DOC.read_text()
    start = text.index(f"## {heading}")
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("## "):
            break
        if line.startswith("|") and not set(line) <= set("|- "):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows[1:]


def allowed() -> dict[str, set[str]]:
    out = {}
    for name, _, may in doc_table("Packages and what they may import"):
        deps = set() if may.startswith("(") else {d.strip() for d in may.split(",")}
        out[name] = deps | {name}
    return out


def modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def type_only(tree: ast.Module) -> set[int]:
    """ids of the nodes under `if TYPE_CHECKING:`: annotations only, never run, so no loop."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return out


def imports(path: Path, mods: dict[str, Path], *, typing_too: bool = True) -> list[tuple[int, str]]:
    """(line, module) for every jobauto import in the file, resolved to a module of ours."""
    out = []
    tree = ast.parse(path.read_text())
    skip = set() if typing_too else type_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import; write jobauto.PACKAGE...")
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "jobauto":
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out.append((node.lineno, full if full in mods else node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "jobauto"]
    return out


def test_every_package_is_on_the_map_and_every_mapped_package_exists() -> None:
    on_map = set(allowed())
    in_code = {p.name for p in PKG.iterdir() if (p / "__init__.py").exists()}
    assert on_map == in_code
    loose = sorted(p.name for p in PKG.glob("*.py") if p.name != "__init__.py")
    assert loose == [], "every module belongs to a package"


def test_imports_go_only_where_the_map_allows() -> None:
    rules = allowed()
    mods = modules()
    wrong = []
    for name, path in mods.items():
        parts = name.split(".")
        if len(parts) < 2:
            continue
        for line, target in imports(path, mods):
            tparts = target.split(".")
            if tparts == ["jobauto"]:
                continue  # jobauto.__version__
            if tparts[1] not in rules[parts[1]]:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {parts[1]} -> {tparts[1]} ({target})")
    assert wrong == []


def test_no_import_loops_between_modules() -> None:
    mods = modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        for _, target in imports(path, mods, typing_too=False):
            # a package's __init__ re-exporting its own modules is not a loop of two rooms
            if target != name and target in mods and not target.startswith(name + "."):
                graph[name].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    loops: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                loops.append(sorted(comp))

    for m in sorted(mods):
        if m not in index:
            visit(m)
    assert loops == []


def test_the_file_for_each_change_is_named_and_small() -> None:
    rows = doc_table("Where to make a change")
    wanted = {"add a new verdict", "change how a submission is retried", "add a column to status",
              "support a new scheduler", "add a CSV validation rule", "change the quelist format"}
    assert wanted <= {change for change, _ in rows}
    for change, cell in rows:
        path = ROOT / re.sub(r"`", "", cell)
        assert path.is_file(), f"{change}: {cell} does not exist"
        n = len(path.read_text().splitlines())
        assert n < MAX_LINES, f"{change}: {cell} has {n} lines"


def test_large_files_say_why() -> None:
    """No module over ~400 lines without a reason written at its top."""
    for path in PKG.rglob("*.py"):
        lines = path.read_text().splitlines()
        if len(lines) > MAX_LINES:
            head = "\n".join(lines[:15]).lower()
            assert re.search(r"(over|past) 400 lines", head), \
                f"{path.relative_to(ROOT)}: {len(lines)} lines, no reason at its top"
