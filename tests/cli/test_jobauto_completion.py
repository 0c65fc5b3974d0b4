"""`jobauto completion bash|zsh [COMMAND]` (jobauto/cli/jobauto.py): scripts made by shtab from
the commands' own parsers, sourced in a real bash and asked as bash asks (COMP_WORDS,
COMP_CWORD); zsh's script is checked with `zsh -n` (tests/tools.sh installs zsh)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import jobauto, run_cli

from jobauto.cli import guard, tables
from jobauto.cli import jobauto as umbrella


def script(shell: str, command: str = "jobauto") -> str:
    r = jobauto("completion", shell, command)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return r.stdout


def complete(tmp_path: Path, text: str, words: list[str], cwd: Path | None = None) -> list[str]:
    """What bash offers for the last of WORDS (the word being typed) after sourcing TEXT."""
    (tmp_path / "completion.bash").write_text(text)
    fn = "_shtab_" + words[0].replace(".", "_")
    quoted = " ".join(f"'{w}'" for w in words)
    body = (f"source {tmp_path / 'completion.bash'}\n"
            f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
            f"COMP_LINE='{' '.join(words)}'; COMP_POINT=${{#COMP_LINE}}\n"
            f"{fn} {words[0]} '{words[-1]}' '{words[-2]}'\n"
            'printf "%s\\n" "${COMPREPLY[@]}"\n')
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", body], capture_output=True,
                       text=True, timeout=60, cwd=cwd or tmp_path, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return sorted(w.strip() for w in r.stdout.splitlines() if w.strip())


def flags(target: str, prog: str | None = None) -> list[str]:
    """The long options of the parser a command builds."""
    p = guard.built(target, prog)
    return sorted(o for a in p._actions for o in a.option_strings if o.startswith("--"))


def test_bash_completes_the_verbs_and_each_verbs_flags(tmp_path: Path) -> None:
    text = script("bash")
    assert complete(tmp_path, text, ["jobauto", ""]) == sorted(umbrella.COMMANDS)
    assert complete(tmp_path, text, ["jobauto", "r"]) == ["render", "report", "rescan", "reset", "run", "runs"]
    for verb in umbrella.COMMANDS:
        faces = [t[verb] for t in (umbrella.TABLES, umbrella.RUNS, umbrella.OTHER) if verb in t]
        assert complete(tmp_path, text, ["jobauto", verb, "--"]) == flags(faces[0].target), verb
    assert complete(tmp_path, text, ["jobauto", "runs", "--"]) == [
        "--help", "--interval", "--json", "--version", "--watch"]
    assert complete(tmp_path, text, ["jobauto", "jobmon", "--scheduler", ""]) == sorted(
        ["auto", "sge", "pbs", "slurm", "local"])
    assert complete(tmp_path, text, ["jobauto", "completion", ""]) == ["bash", "zsh"]


def test_a_path_completes_as_a_file_name(tmp_path: Path) -> None:
    (tmp_path / "camp/2026").mkdir(parents=True)
    (tmp_path / "experiments.db").write_text("")
    text = script("bash")
    assert complete(tmp_path, text, ["jobauto", "runs", "ca"]) == ["camp"]
    assert complete(tmp_path, text, ["jobauto", "status", "ex"]) == ["experiments.db"]


def test_jobmon_and_db_util_have_their_own(tmp_path: Path) -> None:
    jobmon = script("bash", "jobmon")
    assert "--rdir" in complete(tmp_path, jobmon, ["jobmon", "--r"])
    assert complete(tmp_path, jobmon, ["jobmon", "--"]) == flags("jobauto.cli.jobmon:main")
    other = script("bash", "jobmon.py")
    assert complete(tmp_path, other, ["jobmon.py", "--ld"]) == ["--ldir"]
    db_util = script("bash", "db_util")
    assert complete(tmp_path, db_util, ["db_util", ""]) == sorted(
        [*tables.DB_UTIL_VERBS, *tables.DB_UTIL_ALIASES])
    assert complete(tmp_path, db_util, ["db_util", "reset", "--"]) == flags(
        "jobauto.cli.tables:reset_main", "db_util reset")
    for name in ("job_scheduler", "progress_viewer"):
        assert "--version" in complete(tmp_path, script("bash", name), [name, "--"])
    # each script registers its own command with bash
    r = subprocess.run(["bash", "--norc", "-c", f"source <(printf %s {shlex_quote(other)}); "
                        "complete -p jobmon.py"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip().endswith("jobmon.py"), r.stdout + r.stderr


def shlex_quote(s: str) -> str:
    import shlex
    return shlex.quote(s)


@pytest.mark.parametrize("command", list(umbrella.COMPLETED))
def test_zsh_scripts(command: str, tmp_path: Path) -> None:
    text = script("zsh", command)
    assert text.startswith(f"#compdef {command}\n")
    if command == "jobauto":
        for verb in umbrella.COMMANDS:
            assert f"\n    {verb}:'" in text, verb
    zsh = shutil.which("zsh")
    if zsh is None:  # tests/tools.sh installs it; under CI its absence is a failure
        if os.environ.get("CI") == "true":
            pytest.fail("zsh is not installed (bash tests/tools.sh installs it)")
        pytest.skip("zsh is not installed (bash tests/tools.sh installs it)")
    (tmp_path / f"_{command}").write_text(text)
    r = run_cli(zsh, "-n", str(tmp_path / f"_{command}"))
    assert r.returncode == 0, r.stderr


def test_bad_usage_is_exit_2() -> None:
    for args in (["fish"], [], ["bash", "nosuch"]):
        r = jobauto("completion", *args)
        assert r.returncode == 2 and r.stdout == "" and "usage: jobauto completion" in r.stderr
