"""Every command's --help shows an example and its exit codes; the dispatch tables and the usage
texts name the same commands; errors come out through the one guard (the idea of sqlite-utils'
tests/test_docs.py: the help cannot drift from what the commands are)."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import REPO

from jobauto.cli import guard, jobauto, jobmon, tables
from jobauto.core.errors import JobautoError, StateError

RUN = "RUNDIR"   # replaced by an existing directory: the push-mode face of reset and status


def _scripts() -> dict[str, str]:
    """pyproject.toml's [project.scripts] (read by hand: tomllib is Python 3.11+)."""
    text = (REPO / "pyproject.toml").read_text()
    section = text.split("[project.scripts]\n", 1)[1].split("\n[", 1)[0]
    return dict(re.findall(r'^"?([\w.]+)"?\s*=\s*"([\w.:]+)"', section, flags=re.M))


def _help(capsys: pytest.CaptureFixture[str], main: Callable[[list[str]], int], argv: list[str]) -> str:
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code  # type: ignore[assignment]
    out, err = capsys.readouterr()
    assert rc == 0, (argv, rc, err)
    assert err == "", (argv, err)
    return out


# every jobauto verb (both faces of the ones in both lists), every db_util verb, and the
# console scripts of pyproject.toml
CASES: list[tuple[str, str, list[str]]] = [
    *[("jobauto", "jobauto.cli.jobauto:main", [v, "--help"]) for v in jobauto.COMMANDS],
    *[("jobauto", "jobauto.cli.jobauto:main", [v, RUN, "--help"])
      for v in jobauto.RUNS if v in jobauto.TABLES],
    *[("db_util", "jobauto.cli.tables:db_util_main", [v, "--help"])
      for v in [*tables.DB_UTIL_VERBS, *tables.DB_UTIL_ALIASES]],
    *[(name, target, ["--help"])
      for name, target in _scripts().items()],
]


@pytest.mark.parametrize(("name", "target", "argv"), CASES,
                         ids=[" ".join([n, *a]) for n, _, a in CASES])
def test_every_help_has_an_example_and_the_exit_codes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, target: str,
        argv: list[str]) -> None:
    argv = [str(tmp_path) if a == RUN else a for a in argv]
    text = _help(capsys, guard.resolve(target), argv)
    assert "example" in text and "exit codes" in text, text
    prog = " ".join([name, *argv[:-1]][:2]).replace(str(tmp_path), "").strip()
    if "jobmon" in prog:    # jobmon.py and `jobauto jobmon` are jobmon itself
        prog = "jobmon"
    assert text.startswith(f"usage: {prog} "), text


@pytest.mark.parametrize(("name", "target", "argv"), CASES,
                         ids=[" ".join([n, *a[:-1], "--version"]) for n, _, a in CASES])
def test_every_command_answers_version(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, target: str,
        argv: list[str]) -> None:
    argv = [str(tmp_path) if a == RUN else a for a in argv[:-1]] + ["--version"]
    assert _help(capsys, guard.resolve(target), argv) == f"jobauto {jobauto_version()}\n"


def jobauto_version() -> str:
    """The version pyproject.toml declares; jobauto.__version__ says the same."""
    import jobauto as package
    declared = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert declared and package.__version__ == declared[1]
    return declared[1]


def test_the_cases_cover_every_command_the_issue_names() -> None:
    named = {" ".join([n, *a[:-1]]) for n, _, a in CASES}
    for verb in ("jobmon", "explain", "reset", "status", "graph", "report", "import", "add",
                 "export", "run", "workers", "render", "version", "runs", "completion"):
        assert f"jobauto {verb}" in named
    assert {"jobauto reset RUNDIR", "jobauto status RUNDIR"} <= named
    for verb in ("import", "add", "export", "reset", "stats", "status"):
        assert f"db_util {verb}" in named
    assert {"jobmon", "jobmon.py", "jobauto", "db_util", "job_scheduler", "progress_viewer"} <= named


def test_reset_shows_the_face_its_first_argument_picks(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_face = _help(capsys, jobauto.main, ["reset", str(tmp_path), "--help"])
    table_face = _help(capsys, jobauto.main, ["reset", "--help"])
    assert "the run directory, LDIR/DATE" in run_face and "job ids" not in run_face
    assert "job ids" in table_face and "LDIR/DATE" not in table_face


def _listed(usage: str, prefix: str) -> list[str]:
    """The command names of a usage text's command list (the part before the examples)."""
    head = usage.split("\nexamples:")[0]
    return re.findall(rf"^  {re.escape(prefix)}([a-z_]+)", head, flags=re.M)


def test_jobauto_usage_names_the_dispatch_table() -> None:
    listed = _listed(jobauto.USAGE, "")
    assert sorted(set(listed)) == sorted(jobauto.COMMANDS)
    assert listed == [*jobauto.RUNS, *jobauto.TABLES, *jobauto.OTHER]   # in the table's order
    for verb in {**jobauto.RUNS, **jobauto.TABLES, **jobauto.OTHER}.values():
        assert callable(guard.resolve(verb.target)), verb
    # every example calls a verb that exists
    examples = jobauto.USAGE.split("\nexamples:")[1]
    for verb in re.findall(r"\bjobauto ([a-z]+)", examples):
        assert verb in jobauto.COMMANDS, verb


def test_db_util_usage_names_its_verbs() -> None:
    assert _listed(tables.DB_UTIL, "db_util ") == list(tables.DB_UTIL_VERBS)
    for alias, name in tables.DB_UTIL_ALIASES.items():
        assert name in tables.DB_UTIL_VERBS, alias
    for verb in tables.DB_UTIL_VERBS.values():
        assert callable(guard.resolve(verb.target)), verb


def test_an_unknown_command_is_refused_with_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    for main, name in ((jobauto.main, "jobauto"), (tables.db_util_main, "db_util")):
        assert main(["nosuch"]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.startswith(f"{name}: error: unknown command 'nosuch'\n")
        assert "exit codes" in err


def test_the_guard_prints_one_line_and_the_hint_only_when_there_is_one(
        capsys: pytest.CaptureFixture[str]) -> None:
    def fail(e: BaseException) -> Callable[[], int]:
        def go() -> int:
            raise e
        return go

    assert guard.guard("prog", fail(StateError("locked", file="run"))) == 2
    assert capsys.readouterr().err == "prog: error: run: locked\n"
    e = JobautoError("no such table", flag="--db", hint="create it with: jobauto import FILE.csv")
    e.exit_code = 3
    assert guard.guard("prog", fail(e)) == 3
    assert capsys.readouterr().err == ("prog: error: --db: no such table\n"
                                       "prog: hint: create it with: jobauto import FILE.csv\n")
    assert guard.guard("prog", fail(KeyboardInterrupt())) == 130
    assert guard.guard("prog", lambda: 7) == 7
    assert str(e) == "--db: no such table"    # the hint is not part of the message


def test_jobmon_errors_go_through_the_guard(capsys: pytest.CaptureFixture[str]) -> None:
    assert jobmon.main([]) == 2
    assert capsys.readouterr().err == "jobmon: error: --ldir: is required (the local campaign " \
                                      "directory holding init/)\n"


def test_no_command_module_imports_another() -> None:
    """Commands share jobauto.cli.guard and jobauto.cli.common only; the dispatchers name the
    commands as "module:function" in their tables."""
    shared = {"jobauto.cli.guard", "jobauto.cli.common"}
    for path in sorted((REPO / "jobauto/cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name.startswith("jobauto.cli.") and name.count(".") == 2:
                    assert name in shared, f"{path.name} imports {name}"
