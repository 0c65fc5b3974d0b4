"""The layout of tests/ (tests/README.md): a module's tests are found by its name.

* tests/PKG/test_MODULE.py tests jobauto/PKG/.../MODULE.py (a suffix, test_MODULE_ASPECT.py, for a
  part kept apart); only the cross-cutting files listed in CROSS_CUTTING sit in tests/ itself;
* a file whose name ends in _sge or _cluster runs on the real test cluster and is marked
  `cluster`, and every file marked `cluster` is named so;
* no test file imports another test file or conftest (helpers.py and faults.py are for sharing);
  helper modules are not named test_*.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import REPO, TESTS

PACKAGE = REPO / "jobauto"
CROSS_CUTTING = {"test_layout.py": "this check of the layout",
                 "test_architecture.py": "docs/architecture.md against the package: imports, loops, sizes"}
# test files not named after one module, and what they test instead
NAMED_APART = {"store/test_stores.py": "what the two stores share (store/run.py, store/table.py, "
                                       "over store/sqlite.py), one suite over both"}
HELPERS = {"conftest.py", "helpers.py", "faults.py"}
CLUSTER_SUFFIXES = ("_sge", "_cluster")


def all_test_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py") if "data" not in p.relative_to(TESTS).parts)


def packages() -> set[str]:
    return {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


def modules(package: str) -> set[str]:
    """The modules and subpackages of jobauto/PACKAGE, at any depth."""
    root = PACKAGE / package
    names = {p.stem for p in root.rglob("*.py") if p.stem != "__init__"}
    return names | {p.parent.name for p in root.rglob("__init__.py") if p.parent != root}


def imported(path: Path) -> set[str]:
    """The top-level names of every module the file imports (absolute imports)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def marked_cluster(path: Path) -> bool:
    """Whether the file marks all its tests `cluster` (pytestmark)."""
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                for t in node.targets):
            return "mark.cluster" in ast.unparse(node.value)
    return False


def test_there_are_test_files_in_every_package_directory() -> None:
    dirs = {p.relative_to(TESTS).parts[0] for p in all_test_files() if p.parent != TESTS}
    assert dirs == packages()


def test_no_test_file_imports_another_test_file_or_conftest() -> None:
    files = all_test_files() + [TESTS / h for h in HELPERS]
    bad = {str(p.relative_to(TESTS)): sorted(n for n in imported(p)
                                             if n.startswith("test_") or n == "conftest")
           for p in files}
    assert {k: v for k, v in bad.items() if v} == {}


def test_every_test_file_sits_in_its_package_named_after_a_module() -> None:
    misplaced = []
    for p in all_test_files():
        rel = p.relative_to(TESTS)
        if len(rel.parts) == 1:
            if rel.name not in CROSS_CUTTING:
                misplaced.append(f"{rel}: in tests/ itself but not listed in CROSS_CUTTING")
            continue
        if len(rel.parts) != 2 or rel.parts[0] not in packages():
            misplaced.append(f"{rel}: not in a directory named after a jobauto package")
            continue
        if rel.as_posix() in NAMED_APART:
            continue
        name = rel.stem[len("test_"):]
        if not any(name == m or name.startswith(m + "_") for m in modules(rel.parts[0])):
            misplaced.append(f"{rel}: no module of jobauto/{rel.parts[0]} is named {name!r} "
                             "(or a prefix of it)")
    assert misplaced == []


def test_listed_exceptions_still_exist() -> None:
    for rel in [*CROSS_CUTTING, *NAMED_APART]:
        assert (TESTS / rel).is_file(), rel


def test_cluster_files_are_named_and_marked_so() -> None:
    wrong = []
    for p in all_test_files():
        named = p.stem[len("test_"):].endswith(CLUSTER_SUFFIXES)
        if named != marked_cluster(p):
            wrong.append(f"{p.relative_to(TESTS)}: named for the cluster {named}, "
                         f"marked cluster {marked_cluster(p)}")
    assert wrong == []


def test_python_files_are_tests_or_listed_helpers() -> None:
    others = sorted(p.relative_to(TESTS).as_posix() for p in TESTS.rglob("*.py")
                    if not p.name.startswith("test_") and "data" not in p.relative_to(TESTS).parts)
    assert others == sorted(HELPERS), "a helper module not in HELPERS, or a test file not named test_*.py"
