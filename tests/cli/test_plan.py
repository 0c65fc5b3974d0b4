"""`jobauto plan` as a user runs it (jobauto/cli/plan.py): text and --json, LDIR/jobauto.yaml and
flags, bad input exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import chain, jobauto


def campaign(tmp_path: Path) -> Path:
    chain(tmp_path / "camp" / "init", "a", 2)
    return tmp_path / "camp"


def test_json_and_text_take_the_yaml_file_and_flags(tmp_path: Path) -> None:
    ldir = campaign(tmp_path)
    (ldir / "jobauto.yaml").write_text("interval: 30\nmaxqsub: 2\nremote: mycluster\nssh: paramiko\n")
    p = jobauto("plan", str(ldir / "init"), "--json", "--interval=20", check_rc=0)
    got = json.loads(p.stdout)
    assert got["settings"]["interval"] == 20.0 and got["settings"]["maxqsub"] == 2
    assert got["jobs"] == 2 and got["submissions"] == 2 and got["logins"] == 3
    assert got["critical_path_s"] == 2 * (3600 + 20)
    p = jobauto("plan", str(ldir / "init"), "--scheduler=slurm", check_rc=0)
    assert p.stdout.startswith(f"plan for {ldir / 'init'} (new run") and "SSH logins:" in p.stdout


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    ldir = campaign(tmp_path)
    for args, says in ((["--interval=0"], "--interval: must be at least 0.1"),
                       (["--max-scheduler-commands-per-minute=1"], "must be at least 2"),
                       (["--job-hours=nan"], "--job-hours must be a finite number")):
        p = jobauto("plan", str(ldir / "init"), *args, check_rc=2)
        assert says in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    (ldir / "jobauto.yaml").write_text("max_logins_per_hour: 0\n")
    p = jobauto("plan", str(ldir / "init"), check_rc=2)
    assert "jobauto.yaml" in p.stderr and "max_logins_per_hour" in p.stderr
    p = jobauto("plan", str(tmp_path / "nowhere"), check_rc=2)
    assert "no such directory" in p.stderr


def test_the_logins_follow_the_transport_ssh_config_gives_the_host(tmp_path: Path) -> None:
    """--ssh=auto, as jobmon decides it (cluster/host.py transport_kind): a ControlPath for the
    host is the user's master (no logins of the run's own), none is paramiko and rsync logins."""
    ldir = campaign(tmp_path)
    master, plain = tmp_path / "master_config", tmp_path / "plain_config"
    master.write_text("Host mycluster\n    HostName 127.0.0.1\n    ControlMaster auto\n"
                      f"    ControlPath {tmp_path}/cm-%C\n    ControlPersist yes\n")
    plain.write_text("Host mycluster\n    HostName 127.0.0.1\n")
    base = ["plan", str(ldir / "init"), "--remote=mycluster"]
    got = json.loads(jobauto(*base, f"--ssh-config={master}", "--json", check_rc=0).stdout)
    assert (got["transport"], got["logins"], got["login_parts"]) == ("openssh", 0, {})
    text = jobauto(*base, f"--ssh-config={master}", check_rc=0).stdout
    assert "transport:           --ssh=openssh (auto: ssh_config sets a ControlPath" in text, text
    assert "SSH logins:          0 (none of its own: every round trip, push and fetch rides" in text
    got = json.loads(jobauto(*base, f"--ssh-config={plain}", "--json", check_rc=0).stdout)
    assert (got["transport"], got["logins"]) == ("paramiko", 3)
    assert got["login_parts"] == {"session": 1, "push": 1, "fetch at the end": 1}
    text = jobauto(*base, f"--ssh-config={plain}", check_rc=0).stdout
    assert "--ssh=paramiko (auto: ssh_config sets no ControlPath" in text, text
    assert "SSH logins:          3 (1 session + 1 push + 1 fetch at the end)" in text, text
    # an explicit --ssh wins over ssh_config; without --remote there is no SSH at all
    got = json.loads(jobauto(*base, f"--ssh-config={master}", "--ssh=paramiko", "--json",
                             check_rc=0).stdout)
    assert (got["transport"], got["logins"]) == ("paramiko", 3)
    got = json.loads(jobauto("plan", str(ldir / "init"), "--json", check_rc=0).stdout)
    assert (got["transport"], got["logins"]) == ("local", 0)
    p = jobauto(*base, f"--ssh-config={tmp_path / 'missing'}", check_rc=2)
    assert "ssh config file not found" in p.stderr and len(p.stderr.strip().splitlines()) == 1
