"""Plain helpers shared by the tests (fixtures are in conftest.py; no test file imports another):
job trees and tables built as users build them, the commands run as a user runs them, the fake
cluster's Rig, the test cluster's coordinates, captured scheduler output, a stub site for
`jobauto workers`, and readers of what the viewers print."""

from __future__ import annotations

import contextlib
import io
import os
import queue
import random
import re
import shlex
import signal
import socket
import stat
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from jobauto.cluster.host import Host
from jobauto.cluster.schedulers.fake import FakeAdapter, FakeCluster, FakeJob
from jobauto.cluster.transport.fake import FakeTransport
from jobauto.core.model import Command, CommandResult
from jobauto.core.states import COUNT_KEYS
from jobauto.run.cycle import Monitor, Settings
from jobauto.run.mirror import Remote
from jobauto.run.sync import tree_rows
from jobauto.run.tree import copy_init, discover
from jobauto.store import Store
from jobauto.table.arrayplan import WorkersOptions
from jobauto.view.campaign import Campaign, JobView

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
TEMPLATES = REPO / "templates"
DATA = TESTS / "data"      # captured scheduler output (data/README.md)

# -- job trees, built the way a preparation script would ---------------------------------------
# The two tables of the users' own examples (../shared/user-examples/job-tables.md), verbatim.
EXPERIMENTS = """\
param1,param2,JOBSCHEDULER_PRIORITY,JOBSCHEDULER_ESTIMATE_TIME,JOBSCHEDULER_DEPENDS_ON
preprocess,data1,5,0.5,
training,model1,3,2.0,preprocess
evaluation,results,1,0.3,training
"""
FAN_IN = """\
JOBSCHEDULER_JOB_ID,task,JOBSCHEDULER_DEPENDS_ON
jobA,preprocess,
jobB,load_data,
jobC,training,jobA jobB
jobD,evaluation,jobC
"""

# The marker logic of templates/: failed (with the exit code) before finished, always finished.
SCRIPT = """#!/bin/bash
{directives}[ -n "$PBS_O_WORKDIR" ] && cd "$PBS_O_WORKDIR"
cleanup() {{ rc=$?; if [ $rc -ne 0 ]; then echo $rc > qsub.failed.__id__; fi; touch qsub.finished.__id__; }}
trap cleanup EXIT
set -e
{body}
"""


def make_job(root: Path, name: str, deps: list[str] | None = None, body: str = "true",
             directive: str = "", script: str | None = None, head: str = "") -> Path:
    """Write `name` (``dir/qsub.ID``) and its dependency file under root. `head` holds
    scheduler directive lines; `script` replaces the whole script (e.g. one without markers)."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script if script is not None else SCRIPT.format(body=body, directives=head))
    ident = path.name[len("qsub."):]
    lines = ([directive] if directive else []) + list(deps or [])
    (path.parent / f"qsub.dependency.{ident}").write_text("".join(d + "\n" for d in lines))
    return path


def failing_tree(init: Path) -> None:
    """Si/qsub.0 fails with exit code 7, blocking Si/qsub.1 and GaAs/qsub.0; ok/qsub.0 is done."""
    make_job(init, "Si/qsub.0", body="exit 7")
    make_job(init, "Si/qsub.1", ["qsub.finished.0"])
    make_job(init, "GaAs/qsub.0", ["../Si/qsub.finished.1"])
    make_job(init, "ok/qsub.0")


def chain(root: Path, d: str, n: int, body: str = "true") -> list[str]:
    """A chain d/qsub.0 -> ... -> d/qsub.{n-1}; returns the job names."""
    names = []
    for i in range(n):
        make_job(root, f"{d}/qsub.{i}", [f"qsub.finished.{i - 1}"] if i else [], body)
        names.append(f"{d}/qsub.{i}")
    return names


def seed_markers() -> str:
    """The marker block the ecalj example's scripts carry (examples/ecalj/prepare.py MARKERS),
    as every template did before jobmon's wrapper wrote the markers."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("prepare", REPO / "examples/ecalj/prepare.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return str(mod.MARKERS)


def template_script(body: str, head: str = "") -> str:
    """A seed-style job script that writes its own markers (the ecalj example's block: signals
    handled as its users get)."""
    return ("#!/bin/bash\n" + head + '[ -n "$PBS_O_WORKDIR" ] && cd "$PBS_O_WORKDIR"\n'
            + seed_markers() + "work() {\n" + body + "\n}\njobauto_run work\n")


def ecalj_demo(work: Path) -> tuple[Path, str]:
    """The ecalj demo campaign with NiO broken, run to its end on the local scheduler in `work`
    (examples/ecalj/run-local.sh): the run directory (31 jobs: 25 done, NiO/qsub.0 failed, 5 blocked
    behind it) and what run-local.sh printed."""
    p = run_cli("bash", str(REPO / "examples/ecalj/run-local.sh"), str(work), "--break", "NiO",
                timeout=300)
    assert p.returncode == 1, p.stdout + p.stderr
    runs = sorted((work / "foobar").glob("2*"))
    assert len(runs) == 1, runs
    return runs[0], p.stdout


def default_signals() -> None:
    """Popen's preexec_fn for a child a test sends INT or HUP to: as a scheduler or a
    terminal leaves them. A test run started in the background (`bash .ci/run &`) inherits them
    ignored, and neither a shell nor Python can catch a signal ignored on entry: the wrapper
    and `status --watch` never saw the INT their tests sent (a CI run hung on both)."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):   # HUP: ignored under nohup
        signal.signal(sig, signal.SIG_DFL)


def job_body(log: Path, label: str, sleep: float = 1.0) -> str:
    """Job body that records its start and end in `log` (see max_overlap, runs_per_job)."""
    return (f'echo "+ $(date +%s.%N) {label}" >> {log}\n'
            f"sleep {sleep}\n"
            f'echo "- $(date +%s.%N) {label}" >> {log}\n')


def dag(init: Path, log: Path, dirs: list[str], depth: int = 2, sleep: float = 1.0) -> int:
    """A chain of `depth` logging jobs in each of dirs, all feeding summary/qsub.0; returns the
    number of jobs."""
    n = 0
    for k, d in enumerate(dirs):
        for i in range(depth):
            make_job(init, f"{d}/qsub.{i}", [f"qsub.finished.{i - 1}"] if i else [],
                     job_body(log, f"d{k}/{i}", sleep))
            n += 1
    make_job(init, "summary/qsub.0", [f"../{d}/qsub.finished.{depth - 1}" for d in dirs],
             job_body(log, "summary", 0.1))
    return n + 1


def max_overlap(log: Path) -> int:
    """The most jobs of a job_body log that ran at the same time."""
    events = sorted((float(t), 1 if s == "+" else -1) for s, t, *_ in
                    (ln.split() for ln in log.read_text().splitlines()))
    cur = best = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def runs_per_job(log: Path) -> dict[str, int]:
    """How often each label of a job_body log started."""
    out: dict[str, int] = {}
    for ln in log.read_text().splitlines():
        sign, _, name = ln.split(" ", 2)
        if sign == "+":
            out[name] = out.get(name, 0) + 1
    return out


# -- the commands, run as a user runs them (separate processes) --------------------------------
def run_cli(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 120, check_rc: int | None = None, text: bool = True
        ) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """Run a command, output captured; `env` is added to this process's environment."""
    p = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=text, timeout=timeout,
                       stdin=subprocess.DEVNULL, env={**os.environ, **env} if env else None)
    if check_rc is not None:
        assert p.returncode == check_rc, f"rc {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def as_a_user(*argv: str) -> list[str]:
    """ARGV to run so that file permissions apply: under root, without the capabilities that
    let root write any file (setpriv, util-linux)."""
    if os.geteuid() != 0:
        return list(argv)
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *argv]


def jobauto(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120, check_rc: int | None = None, text: bool = True
            ) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """The jobauto command."""
    return run_cli("jobauto", *args, cwd=cwd, env=env, timeout=timeout, check_rc=check_rc, text=text)


def jobmon(*args: str, cwd: Path | None = None, timeout: float = 300,
           check_rc: int | None = None) -> subprocess.CompletedProcess[str]:
    """The jobmon command."""
    return run_cli("jobmon", *args, cwd=cwd, timeout=timeout, check_rc=check_rc)


# Records each run ("start ARGS" / "end ARGS") in runs.log; sleeps $SLEEP; fails on $FAIL.
RECORD = """\
#!/bin/sh
echo "start $*" >> runs.log
sleep "${SLEEP:-0}"
case "$1" in ${FAIL:-__none__}) echo "failing on purpose: $1" >&2; exit 3;; esac
echo "end $*" >> runs.log
"""


def import_table(tmp_path: Path, csv: str, name: str = "jobs") -> Path:
    """A job table made as a user does: NAME.csv and run.sh (RECORD) in tmp_path, then
    `jobauto import NAME.csv`. Returns the table (NAME.db)."""
    (tmp_path / f"{name}.csv").write_text(csv)
    (tmp_path / "run.sh").write_text(RECORD)
    jobauto("import", f"{name}.csv", cwd=tmp_path, check_rc=0)
    return tmp_path / f"{name}.db"


def start_jobmon(args: list[str], out: Path) -> subprocess.Popen[bytes]:
    """jobmon in the background, its output appended to `out`."""
    return subprocess.Popen(["jobmon", *args], stdout=out.open("ab"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)


def kill_9_at_random(args: list[str], out: Path, rng: random.Random, times: int, low_s: float,
                     high_s: float) -> None:
    """Start jobmon (start_jobmon) and kill -9 it after a random while, `times` times or until
    one ends by itself first."""
    for _ in range(times):
        proc = start_jobmon(args, out)
        time.sleep(rng.uniform(low_s, high_s))
        if proc.poll() is not None:
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


# -- a monitor on the fake cluster, with an explicit clock ----------------------------------------
RDIR = "/remote/run"


class Rig:
    """A run directory, its store, a fake cluster and the monitor over them."""

    def __init__(self, tmp: Path, maxqsub: int = 10, lost_after_s: float = 300.0,
                 ahead: int = 0) -> None:
        self.tmp = tmp
        self.init = tmp / "init"
        self.run = tmp / "run"
        self.cluster = FakeCluster()
        self.transport = FakeTransport(self.cluster,
                                       on_push=lambda local, remote: self.cluster.load_tree(local, remote))
        self.transport.on_push_files = self.cluster.load_files
        # --ahead is 10 by default; the unit tests of other logic count submissions as jobs
        # become ready, so they run without it (tests/run/test_ahead*.py set it)
        self.settings = Settings(maxqsub=maxqsub, lost_after_s=lost_after_s, ahead=ahead)
        self.store: Store | None = None
        self.monitor: Monitor | None = None

    def start(self) -> Monitor:
        specs = discover(self.init)
        copy_init(self.init, self.run, specs, {})
        self.store = Store(self.run / ".jobauto" / "state.db")
        Monitor.create(self.store, specs, self.run)
        self.monitor = self.new_monitor()
        rows = tree_rows(self.run)   # as the first push records what it sent
        self.monitor.remote.push(self.run)
        self.monitor.remote.stamp(0)
        with self.store.transaction():
            self.store.record_synced(rows, "pushed", NOW)
        return self.monitor

    def new_monitor(self) -> Monitor:
        """A fresh monitor on the same store: what a restart after kill -9 sees."""
        self.store = Store(self.run / ".jobauto" / "state.db")
        remote = Remote(Host(self.transport, FakeAdapter()), RDIR)
        return Monitor(self.run, self.store, remote, self.settings)

    def job(self, name: str) -> FakeJob:
        return next(j for j in self.cluster.submitted if f"{j.dir}/{j.script}" == f"{RDIR}/{name}")

    def job_latest(self, name: str) -> FakeJob:
        return [j for j in self.cluster.submitted if f"{j.dir}/{j.script}" == f"{RDIR}/{name}"][-1]

    def states(self) -> dict[str, str]:
        assert self.monitor is not None
        return {n: j.state.value for n, j in self.monitor.jobs.items()}

    def answer_next_scan(self, tar: bytes) -> None:
        """The cluster's next scan or look (stamped as usual) sends `tar` instead of what it found: a
        hostile or broken cluster, or find listing files in an unusual order."""
        real = self.transport.handler

        def handler(cmd: Command) -> CommandResult:
            res = real(cmd)
            if cmd.argv[3:4] in (("jobauto-scan",), ("jobauto-look",)):
                self.transport.handler = real
                return CommandResult(res.argv, 0, tar)
            return res
        self.transport.handler = handler


# -- tar streams as a cluster might send them ------------------------------------------------------
def tar_entry(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "",
              mtime: float = 1_700_000_000.0) -> tuple[tarfile.TarInfo, bytes]:
    """One member: a regular file with data, or (kind SYMTYPE, LNKTYPE, CHRTYPE, DIRTYPE ...) an
    entry of another type pointing at `link`."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mtime = kind, link, mtime  # type: ignore[assignment]
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data


def make_tar(*entries: tuple[tarfile.TarInfo, bytes]) -> bytes:
    """A tar stream holding the entries in this order (names as given, any format needed)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


# -- the real test cluster (tests/cluster/up.sh) ------------------------------------------------
CLUSTER_DIR = Path(os.environ.get("JOBAUTO_TEST_CLUSTER_DIR", "/tmp/jobauto-cluster"))
SSH_CONFIG = CLUSTER_DIR / "ssh_config"
HOST = "testhost"
REMOTE_USER = "jobauto"
TORQUE_BIN = os.environ.get("JOBAUTO_TEST_TORQUE_BIN", "/opt/slurm-torque/bin")


def ssh(cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A command on the test cluster, as its user."""
    return subprocess.run(["ssh", "-F", str(SSH_CONFIG), HOST, cmd], capture_output=True, text=True,
                          check=check, stdin=subprocess.DEVNULL, timeout=120)


@dataclass
class Cluster:
    ssh_config: Path
    host: str
    user: str
    home: Path

    def remote_dir(self, prefix: str = "t") -> str:
        """A fresh directory on the cluster, relative to the remote home."""
        return f"jobauto-tests/{prefix}-{uuid.uuid4().hex[:8]}"

    def path(self, rel: str) -> Path:
        """Where a remote-home-relative path is on this machine (the cluster is local)."""
        return self.home / rel


@dataclass
class Sched:
    """A real scheduler of the test cluster, and how jobmon is pointed at it."""

    name: str
    cluster: Cluster
    args: list[str]

    def cancel(self, job_id: str) -> None:
        cmd = {"sge": "qdel", "slurm": "scancel", "pbs": f"{TORQUE_BIN}/qdel"}[self.name]
        ssh(f"{cmd} {job_id}")

    def submissions(self, prefix: str) -> list[str]:
        """Job names starting with prefix in the scheduler's own accounting (finished jobs)."""
        if self.name == "sge":
            out = ssh(f"qacct -j '{prefix}*' 2>/dev/null | awk '$1==\"jobname\"{{print $2}}'", check=False).stdout
        else:
            out = ssh("sacct -n -X -P -o JobName -S now-2hours", check=False).stdout
        return [n for n in out.split() if n.startswith(prefix)]


def base_args(c: Cluster, ldir: Path, rdir: str) -> list[str]:
    """jobmon's arguments for a run on the test cluster: a short --interval, and a scheduler-
    command cap that lets it poll each cycle (the default 60 a minute would make it every 2 s;
    tests of the cap give their own after these)."""
    return [f"--ldir={ldir}", f"--rdir={rdir}", f"--remote={c.host}", f"--ssh-config={c.ssh_config}",
            "--interval=0.5", "--max-scheduler-commands-per-minute=1000"]


# -- captured scheduler output (tests/data/) ---------------------------------------------------
def captured(name: str, sched: str = "sge", argv: tuple[str, ...] = ("qsub",)) -> CommandResult:
    """A captured command result: DATA/sched/name.out, .rc and .err (if any)."""
    base = DATA / sched / name
    err = base.with_suffix(".err")
    return CommandResult(argv, int(base.with_suffix(".rc").read_text()),
                         base.with_suffix(".out").read_bytes(), err.read_text() if err.exists() else "")


def joined(sched: str, *names: str) -> CommandResult:
    """Several captures as one command's output, as a script that runs them in turn prints it."""
    parts = [captured(n, sched) for n in names]
    return CommandResult(("sh",), 0, b"".join(p.stdout for p in parts), "".join(p.stderr for p in parts))


def out(text: str, rc: int = 0, err: str = "") -> CommandResult:
    """A command result written in the test."""
    return CommandResult(("sh",), rc, text.encode(), err)


# -- a cluster site on this machine for `jobauto workers` (stub qsub and jobauto) -------------
def stub(path: Path, body: str) -> Path:
    """An executable shell script at path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


class Site:
    """This machine as the cluster, with a recording qsub and a stub jobauto."""

    def __init__(self, tmp_path: Path, qsub_out: str = "4711.1-3:1", qsub_rc: int = 0) -> None:
        self.root = tmp_path / "my tables" / "it's"
        self.root.mkdir(parents=True)
        self.db = self.root / "jobs.db"
        self.db.write_bytes(b"stub")
        self.bin = tmp_path / "sched bin"
        self.qsub_record = tmp_path / "qsub.argv"
        self.run_record = tmp_path / "run.argv"
        stub(self.bin / "qsub", f'{{ pwd; for a in "$@"; do printf "%s\\n" "$a"; done; }} > '
             f'{shlex.quote(str(self.qsub_record))}\necho {shlex.quote(qsub_out)}\nexit {qsub_rc}\n')
        self.jobauto = stub(tmp_path / "jb" / "jobauto", (
            'case $1 in version) echo "jobauto 0.1.0";; status) [ -f "$2" ] || { echo "no table" >&2; exit 2; };; '
            f'run) {{ pwd; for a in "$@"; do printf "%s\\n" "$a"; done; }} > {shlex.quote(str(self.run_record))};; esac\n'))

    def options(self, **kw: object) -> WorkersOptions:
        base: dict[str, object] = dict(db=str(self.db), command=["bash", "run.sh"], n=3,
                                       scheduler="sge", scheduler_bin=[str(self.bin)],
                                       jobauto=shlex.quote(str(self.jobauto)), walltime="00:10:00")
        base.update(kw)
        return WorkersOptions(**base)  # type: ignore[arg-type]

    def qsub_calls(self) -> list[str]:
        return self.qsub_record.read_text().splitlines() if self.qsub_record.exists() else []


# -- what the viewers show ---------------------------------------------------------------------
NOW = 1_800_000_000.0        # the fixed "now" of hand-built campaigns
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
KEYS = ("done", "running", "pending", "ready", "waiting", "blocked", "error")


def make_campaign(kind: str, jobs: list[JobView], path: str, now: float, **kw: object) -> Campaign:
    """A hand-built campaign; its counts (and pending) from the jobs' states."""
    counts = {k: 0 for k in COUNT_KEYS}
    for j in jobs:
        counts[j.derived or j.state] += 1
    counts["pending"] = counts["ready"] + counts["waiting"] + counts["blocked"]
    return Campaign(kind, path, now, jobs, counts, **kw)  # type: ignore[arg-type]


def strip(s: str) -> str:
    """Terminal output without its escape sequences, with plain newlines."""
    return ANSI.sub("", s).replace("\r\n", "\n")


def _counts(line: str, text: str) -> dict[str, int]:
    out = {}
    for m in re.finditer(line, text, re.M):
        out[m.group(1).lower()] = int(m.group(2))
    assert set(out) == set(KEYS), text
    return out


def text_counts(text: str) -> dict[str, int]:
    """The counts of the plain view: `Done: 3`, `  - Blocked: 1    ← ...`."""
    return _counts(r"^(?:  - )?(Done|Running|Pending|Ready|Waiting|Blocked|Error): (\d+)", text)


def rich_counts(text: str) -> dict[str, int]:
    """The counts of the rich view (escapes stripped): `  Blocked    1  ━━━ blocked by ...`."""
    return _counts(r"^\s*(Done|Running|Pending|Ready|Waiting|Blocked|Error)\s+(\d+)\s", text)


SVG_NS = "{http://www.w3.org/2000/svg}"


def svg_texts(svg: bytes) -> list[str]:
    """The text of every <text> element of an SVG."""
    return ["".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{SVG_NS}text")]


# -- report pages -----------------------------------------------------------------------------
# names and text that would be markup on an HTML page
HOSTILE_HTML = ["<script>alert(1)</script>", 'a"b', "$(x)", "it's & <b>bold</b>"]


def section(html: str, name: str) -> str:
    """The inside of <section id="name"> of a report page."""
    m = re.search(rf'<section id="{name}">(.*?)</section>', html, re.S)
    assert m, f"no section #{name}"
    return m.group(1)


class Collect(HTMLParser):
    """Every start tag with its (unescaped) attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Collect:
    """A page's start tags and text."""
    p = Collect()
    p.feed(html)
    return p


# -- files ------------------------------------------------------------------------------------
def write_file(directory: Path, text: str | bytes, name: str = "t.csv") -> Path:
    """directory/name with text (UTF-8) or bytes."""
    p = directory / name
    if isinstance(text, str):
        p.write_text(text, encoding="utf-8")
    else:
        p.write_bytes(text)
    return p


def runs_log(directory: Path) -> list[str]:
    """The lines of directory/runs.log (RECORD writes it), [] before any."""
    p = directory / "runs.log"
    return p.read_text().splitlines() if p.exists() else []


# -- disks that fill up or turn read-only (conftest's small_disk mounts them) -------------------
def remount(disk: Path, *options: str) -> None:
    """Remount a small_disk with OPTIONS (ro, rw, size=2m)."""
    subprocess.run(["mount", "-o", "remount," + ",".join(options), str(disk)], check=True)


def fill_disk_command(disk: Path) -> str:
    """A shell command (for a job body) that fills DISK to the last block."""
    return f"dd if=/dev/zero of={disk}/filler bs=512 2>/dev/null || true"


def leftovers(directory: Path) -> list[str]:
    """Temporary files and half-made runs under DIRECTORY: what a stopped jobmon must not leave."""
    pats = ("*.tmp", "*-journal", "*.jobauto-tmp", ".*.jobauto-new", ".jobauto-creating")
    return sorted(str(p.relative_to(directory)) for pat in pats for p in directory.rglob(pat))


def check_ran_once(run: Path, log: Path, n: int) -> None:
    """Every one of the N jobs of a job_body campaign ran exactly once, and quelist says each
    finished."""
    runs = runs_per_job(log)
    assert len(runs) == n and set(runs.values()) == {1}, runs
    lines = (run / "quelist").read_text().splitlines()
    assert len(lines) == n and all("finished@" in ln for ln in lines), lines


# -- local receivers of notifications (jobauto/run/notify.py) ------------------------------------
class Receiver:
    """An HTTP server on 127.0.0.1, in a thread, that keeps every POST (path, headers, JSON body)
    and answers STATUS: where apprise's json:// URLs deliver in the tests."""

    def __init__(self, status: int = 200) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.posts: list[tuple[str, dict[str, str], dict[str, object]]] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.posts.append((self.path, dict(self.headers), json.loads(data or b"{}")))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def titles(self) -> list[str]:
        return [str(body.get("title")) for _, _, body in self.posts]


def recording_hook(directory: Path, name: str = "hook", body: str = "") -> Path:
    """An executable that appends, per call, a line `== EVENT RUN COUNT` with its arguments, its
    JOBAUTO_* environment as JSON and its stdin (one JSON object) to DIRECTORY/NAME.log; then
    runs BODY (to fail or hang)."""
    path = directory / name
    path.write_text(f"""#!/bin/sh
log={shlex.quote(str(directory / (name + '.log')))}
echo "== $JOBAUTO_EVENT $JOBAUTO_RUN $JOBAUTO_COUNT args: $*" >> "$log"
python3 -c 'import json, os; print(json.dumps({{k: v for k, v in os.environ.items() if k.startswith("JOBAUTO_")}}))' >> "$log"
cat >> "$log"
{body}
""")
    path.chmod(0o755)
    return path


def hook_calls(log: Path) -> list[tuple[str, dict[str, str], dict[str, object]]]:
    """What recording_hook saw, per call: its `==` line, its environment, its stdin's JSON."""
    import json

    lines = log.read_text().splitlines() if log.exists() else []
    return [(lines[i], json.loads(lines[i + 1]), json.loads(lines[i + 2]))
            for i in range(0, len(lines), 3)]


def sendmail_stand_in(bin_dir: Path, spool: Path) -> Path:
    """A `sendmail` in BIN_DIR that keeps each message it is given (stdin) as SPOOL/N.eml and its
    arguments as SPOOL/N.args, as a local mail transfer agent would take it for delivery."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    spool.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "sendmail"
    path.write_text(f"""#!/bin/sh
n=$(ls {shlex.quote(str(spool))} | wc -l)
echo "$@" > {shlex.quote(str(spool))}/$n.args
cat > {shlex.quote(str(spool))}/$n.eml
""")
    path.chmod(0o755)
    return path


# -- far-away clusters, master connections, a private sshd ----------------------------------------
class DelayRelay:
    """A TCP relay on loopback that adds `delay_s` each way: a delay line, not a throttle. Each
    chunk read is stamped with the time it may leave and forwarded then, so throughput stays
    what the link gives and only latency is added (50 ms each way: a 100 ms round trip, a
    far-away cluster). Point a client at 127.0.0.1:`port` (client_config); `connections`
    counts the TCP connections it relayed (each SSH login is one)."""

    def __init__(self, target: tuple[str, int], delay_s: float = 0.05) -> None:
        self.target = target
        self.delay_s = delay_s
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._socks: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                near, _ = self._server.accept()
                far = socket.create_connection(self.target)
            except OSError:
                if self._closed:
                    return
                continue
            self.connections += 1
            self._socks += [near, far]
            for src, dst in ((near, far), (far, near)):
                line: queue.Queue[tuple[float, bytes]] = queue.Queue()
                threading.Thread(target=self._read, args=(src, line), daemon=True).start()
                threading.Thread(target=self._write, args=(dst, line), daemon=True).start()

    def _read(self, src: socket.socket, line: queue.Queue[tuple[float, bytes]]) -> None:
        while True:
            try:
                data = src.recv(1 << 16)
            except OSError:
                data = b""
            line.put((time.monotonic() + self.delay_s, data))
            if not data:
                return

    @staticmethod
    def _write(dst: socket.socket, line: queue.Queue[tuple[float, bytes]]) -> None:
        while True:
            due, data = line.get()
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._closed = True
        for s in [self._server, *self._socks]:
            with contextlib.suppress(OSError):
                s.close()


def client_config(directory: Path, port: int, *extra: str) -> Path:
    """An ssh_config for the test cluster's sshd reached at 127.0.0.1:PORT (a relay or a private
    sshd with the same host key): host `testhost`, the test key, a known_hosts naming that port,
    and EXTRA lines (e.g. "ControlPath /tmp/x/%C") in the host's entry. Returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    known = directory / "known_hosts"
    keys = [ln.split(None, 1)[1] for ln in (CLUSTER_DIR / "known_hosts").read_text().splitlines()
            if ln.strip()]
    known.write_text("".join(f"[127.0.0.1]:{port} {k}\n" for k in keys))
    lines = []
    for ln in SSH_CONFIG.read_text().splitlines():
        key = ln.split()[0].lower() if ln.split() else ""
        if key == "port":
            ln = f"    Port {port}"
        elif key == "userknownhostsfile":
            ln = f"    UserKnownHostsFile {known}"
        lines.append(ln)
    cfg = directory / "ssh_config"
    cfg.write_text("\n".join(lines + [f"    {e}" for e in extra]) + "\n")
    return cfg


def control_dir() -> Path:
    """A fresh directory for master sockets, short enough for a socket's path (about 100
    bytes at most, which pytest's tmp_path can pass); the caller removes it."""
    return Path(tempfile.mkdtemp(prefix="ja-cm-", dir="/tmp"))


def master_alive(ssh_config: Path, host: str = HOST) -> bool:
    return subprocess.run(["ssh", "-F", str(ssh_config), "-O", "check", host], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=30).returncode == 0


def start_master(ssh_config: Path, host: str = HOST) -> subprocess.Popen[bytes]:
    """The user's OpenSSH master for HOST (`ssh -NM`, as `ssh -fNM` but a child of the test
    that can be stopped by its pid), once it answers `ssh -O check`."""
    proc = subprocess.Popen(["ssh", "-NM", "-F", str(ssh_config), host], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while not master_alive(ssh_config, host):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError(f"the master did not start: {err.decode(errors='replace')}")
        time.sleep(0.1)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a process this test started (SIGTERM, then SIGKILL)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def private_sshd(directory: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    """An sshd of our own (the test cluster's configuration and host key on another port, in
    the foreground, logging at VERBOSE to its own file): for counting logins without the other
    tests' in the shared log. Needs root. Returns the process, its port and its log."""
    directory.mkdir(parents=True, exist_ok=True)
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    cfg, log = directory / "sshd_config", directory / "sshd.log"
    keep = [ln for ln in (CLUSTER_DIR / "sshd_config").read_text().splitlines()
            if ln.split() and ln.split()[0].lower() not in ("listenaddress", "port", "pidfile", "loglevel")]
    cfg.write_text("\n".join([f"ListenAddress 127.0.0.1:{port}", "PidFile none",
                              "LogLevel VERBOSE", *keep]) + "\n")
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", str(cfg), "-E", str(log)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port, log
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                stop(proc)
                raise AssertionError(f"private sshd did not start: {proc.stderr.read() if proc.stderr else ''!r}"
                                     f" {log.read_text() if log.exists() else ''}") from None
            time.sleep(0.1)


def logins(sshd_log: Path) -> list[str]:
    """The logins an sshd logged: "Accepted publickey for USER from ..." (LogLevel INFO and up;
    VERBOSE's "Accepted key ... found at" lines are steps of one login, not logins)."""
    return [ln for ln in sshd_log.read_text().splitlines() if re.match(r"Accepted \S+ for ", ln)]


SSH_PORT = int(os.environ.get("JOBAUTO_TEST_SSH_PORT", "2222"))


class Master:
    """The user's OpenSSH master connection to HOST as SSH_CONFIG sets it (ControlPath), which
    a test starts, stops (the master is gone) and starts again (the user logged in again)."""

    def __init__(self, ssh_config: Path, host: str = HOST) -> None:
        self.ssh_config = ssh_config
        self.host = host
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = start_master(self.ssh_config, self.host)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None
