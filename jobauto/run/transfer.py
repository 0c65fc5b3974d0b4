"""Moving a run's files on demand: the fetch policy (end of run, --initonly, `jobauto fetch`)
and removing the run's copy on the cluster (`jobauto clean --remote`).

A fetch lists the run directory on the cluster (one command), keeps what the policy wants and
what differs from the local copy (size, or mtime in whole seconds: what rsync's quick check
compares), never what the user changed locally since it was last pushed or fetched
(run/sync.py), and moves exactly that list in one transfer (rsync --files-from), so that the
figures shown before (`--dry-run`) are what the transfer then moves. docs/decisions.md records
the default policy.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jobauto.cluster import host
from jobauto.cluster.transport.base import glob_regex
from jobauto.core.config import Options, merge
from jobauto.core.deps import FAILED, FINISHED, SCRIPT, job_of_marker, scan_kind
from jobauto.core.errors import ConfigError, PathError, StateError, TransportError
from jobauto.core.files import check_name, shown
from jobauto.core.layout import STATE_DIR, lock_path
from jobauto.core.lock import Lock
from jobauto.core.model import JobState
from jobauto.run import sync
from jobauto.run.mirror import Remote, op
from jobauto.run.opener import recorded_options
from jobauto.run.wrapper import WRAPPER_GLOB
from jobauto.store import Store, open_run_store

LIST_MAX = 10_000_000     # entries of a listing taken; the rest is counted, not held
KEPT_SHOWN = 10           # kept files named in the output; the run's events name every one
CHUNKS = 20               # a fetch with a progress bar moves its files in up to this many parts
# The scheduler's output and error files of jobmon's jobs: qsub.ID.oJOBID / .eJOBID (Grid
# Engine, the templates, the local scheduler), TOKEN.oSEQ (PBS names them after the job's
# name, jobmon's token), slurm-JOBID.out (Slurm without the template's --output).
SCHED_OUTPUT = re.compile(r"^(qsub\..+|ja[0-9a-z]+_[0-9]+)\.[oe][0-9]+(\.[0-9]+)?$|"
                          r"^slurm-[0-9]+(_[0-9]+)?\.out$")


class Refused(StateError):
    """Not done now, for a reason that passes (a monitor serves the run, jobs still run)."""

    exit_code = 1


@dataclass
class RemoteFile:
    name: str
    size: int
    mtime: float


@dataclass
class Listing:
    files: list[RemoteFile] = field(default_factory=list)
    unusable: int = 0        # names a fetch will not write (check_name), or lines not understood

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass
class Plan:
    """What a fetch moves (files, in listing order), keeps and skips."""

    files: list[RemoteFile] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)   # changed locally: not fetched over
    same: int = 0                                   # already here, as on the cluster
    unusable: int = 0

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


# -- the connection ------------------------------------------------------------------------------
def connection(run_dir: Path, *, remote: str | None = None, user: str | None = None,
               ssh_config: Path | None = None, config: Path | None = None,
               ssh: str | None = None) -> tuple[Options, str]:
    """How to reach RUN_DIR's copy on the cluster: its directory and scheduler as the store
    recorded them, the host from the run's recorded settings (opener.recorded_options), changed
    by --config and by --remote/--user/--ssh-config/--ssh when given. A run made before settings were
    recorded takes the host from those flags, LDIR/jobauto.yaml and --config, as jobmon does."""
    store = open_run_store(run_dir, readonly=True)
    try:
        rundir = store.get_meta("rundir")
        sched = store.get_meta("scheduler")
    finally:
        store.close()
    if not rundir:
        raise StateError("the run does not say where it lives on the cluster (no rundir)",
                         file=str(run_dir))
    flags: dict[str, object] = {"remote": remote, "user": user, "ssh_config": ssh_config,
                              "ssh": ssh}
    try:
        recorded: Options | None = recorded_options(run_dir)
    except StateError:   # made before settings were recorded
        recorded = None
    if recorded is not None:
        opts = merge(flags, [config] if config is not None else [], base=recorded)
    else:
        files = [p for p in (run_dir.parent / "jobauto.yaml", config) if p is not None and
                 (p != run_dir.parent / "jobauto.yaml" or p.exists())]
        opts = merge(flags, files)
    opts.scheduler = sched or opts.scheduler
    opts.ldir, opts.datedir = run_dir.parent, run_dir.name
    return opts, rundir


def open_remote(opts: Options, rundir: str) -> Remote:
    """Connect as jobmon does (cluster/host.py) to the run's directory."""
    return Remote(host.open_host(opts), rundir)


# -- listing and policy --------------------------------------------------------------------------
def check_globs(globs: list[str], flag: str) -> list[re.Pattern[str]]:
    """Compile rsync-style globs; one that names nothing below the run is an error."""
    out = []
    for g in globs:
        if not g or "\0" in g or "\n" in g or ".." in g.split("/") or g.strip("/") == "":
            raise ConfigError(f"{g!r} is not a glob of files below the run (rsync style: "
                              "'*.dat', '**/out/*')", flag=flag)
        out.append(glob_regex(g))
    return out


def list_remote(remote: Remote) -> Listing:
    """Every regular file of the run's directory on the cluster (the state directory too),
    parsed with bounds: a name a fetch would not write is counted, not listed."""
    res = remote.transport.run_many([op("list", remote.rundir)])[0]
    if res.rc == 3:
        raise TransportError(f"{remote.rundir} is not on {remote.transport.host} (removed, or "
                             "another --remote or --rdir)", transient=False)
    if res.rc != 0:
        raise TransportError(f"cannot list {remote.rundir} on {remote.transport.host}: "
                             f"{res.stderr.strip()[-300:] or 'exit ' + str(res.rc)}")
    out = Listing()
    for entry in res.stdout.split(b"\0"):
        if not entry:
            continue
        parts = entry.split(b"\t", 2)
        if len(out.files) >= LIST_MAX or len(parts) != 3 or not parts[0].isdigit():
            out.unusable += 1
            continue
        try:
            mtime = float(parts[1])
            name = check_name(parts[2].decode("utf-8", "surrogateescape")) \
                if not parts[2].startswith(STATE_DIR.encode() + b"/") else \
                parts[2].decode("utf-8", "surrogateescape")
        except (ValueError, PathError):
            out.unusable += 1
            continue
        out.files.append(RemoteFile(name, int(parts[0]), mtime if 0 <= mtime < 2.0 ** 34 else 0.0))
    return out


def wanted(name: str, globs: list[re.Pattern[str]], everything: bool, default: bool) -> bool:
    """The fetch policy: never the state directory or jobmon's wrappers (run/wrapper.py, written
    on the cluster at submission); with EVERYTHING all; else the markers and the scheduler's
    output files when DEFAULT, and whatever a glob names."""
    if name.split("/", 1)[0] == STATE_DIR or fnmatch.fnmatchcase(posixpath.basename(name),
                                                                 WRAPPER_GLOB):
        return False
    if everything:
        return True
    if default and (scan_kind(name) in (FINISHED, FAILED)
                    or SCHED_OUTPUT.match(posixpath.basename(name))):
        return True
    return any(g.match(name) for g in globs)


def plan_fetch(remote: Remote, run_dir: Path, store: Store, globs: list[re.Pattern[str]], *,
               everything: bool = False, default: bool = True) -> Plan:
    """What a fetch with this policy moves now (nothing is changed)."""
    listing = list_remote(remote)
    plan = Plan(unusable=listing.unusable)
    differ: list[RemoteFile] = []
    for f in listing.files:
        if not wanted(f.name, globs, everything, default):
            continue
        try:
            st = os.lstat(run_dir / f.name)
        except FileNotFoundError:
            plan.files.append(f)
            continue
        except OSError:            # a file where a directory is needed: the copy says so
            plan.files.append(f)
            continue
        if (stat.S_ISREG(st.st_mode) and st.st_size == f.size
                and int(st.st_mtime) == int(f.mtime)):
            plan.same += 1
            continue
        differ.append(f)
    changed, _ = sync.changed_locally(store, run_dir, [f.name for f in differ])
    kept = {r[0] for r in changed}
    plan.kept = sorted(kept)
    plan.files += [f for f in differ if f.name not in kept]
    return plan


def fetch(remote: Remote, run_dir: Path, store: Store, plan: Plan, now: float,
          progress: Callable[[int, int], None] | None = None) -> tuple[int, int]:
    """Move the plan's files (in parts when PROGRESS is given: called with the files and bytes
    moved so far), record them as fetched, and the kept files as events; return the files and
    bytes the transfer moved."""
    names = [f.name for f in plan.files]
    moved = size = 0
    step = max(1, -(-len(names) // CHUNKS)) if progress else max(1, len(names))
    for i in range(0, len(names), step):
        n, b = remote.pull_files(run_dir, names[i:i + step])
        moved, size = moved + n, size + b
        if progress:
            progress(min(i + step, len(names)), sum(f.size for f in plan.files[:i + step]))
    rows = [r for r in (sync.row(run_dir, n) for n in names) if r is not None]
    with store.transaction():
        store.record_synced(rows, "fetched", now)
        store.add_events((now, _job(p), "kept-local", f"{p}: changed locally since it was last "
                          "pushed or fetched; not fetched over") for p in plan.kept)
    return moved, size


def _job(path: str) -> str:
    """The job a file is of: a job script's own name, a marker's or dependency file's job."""
    hit = job_of_marker(path)
    return hit[0] if hit else path if scan_kind(path) == SCRIPT else ""


def plan_lines(plan: Plan, verb: str = "to fetch") -> list[str]:
    """The plan in a few lines: how much moves, what is kept, what was not usable."""
    out = [f"{len(plan.files)} file(s), {size(plan.bytes)} {verb} ({plan.same} already here)"]
    if plan.kept:
        names = ", ".join(shown(k) for k in plan.kept[:KEPT_SHOWN])
        more = f" and {len(plan.kept) - KEPT_SHOWN} more" if len(plan.kept) > KEPT_SHOWN else ""
        out.append(f"kept {len(plan.kept)} local file(s) changed since they were last pushed or "
                   f"fetched (not fetched over): {names}{more}")
    if plan.unusable:
        out.append(f"{plan.unusable} name(s) on the cluster not fetched (not usable below the run)")
    return out


def size(n: int) -> str:
    """Bytes exactly, and for a large figure also in units: `5012 bytes (4.9 KiB)`."""
    return f"{n} bytes" + (f" ({human(n)})" if n >= 1024 else "")


def human(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"


def fetch_run(remote: Remote, run_dir: Path, store: Store, globs: list[str], everything: bool,
              say: Callable[[str], None]) -> None:
    """The end-of-run fetch (and --initonly's): the markers, the scheduler's output files and
    the --fetch globs (everything with --fetch-all), never over a local change."""
    plan = plan_fetch(remote, run_dir, store, check_globs(globs, "--fetch"), everything=everything)
    for line in plan_lines(plan):
        say(f"jobmon: fetch: {line}")
    fetch(remote, run_dir, store, plan, time.time())


# -- removing the cluster's copy -----------------------------------------------------------------
def running_on_cluster(remote: Remote, store: Store) -> list[str]:
    """The run's jobs the store has running and the scheduler's queue still lists (by id or by
    submission name). A queue that cannot be read is an error: nothing is known."""
    running = [j for j in store.load_jobs() if j.state == JobState.RUNNING]
    if not running:
        return []
    res = remote.transport.run_many([remote.host.queue_command()])[0]
    try:
        queue = remote.adapter.parse_queue(res)
    except (ValueError, IndexError, KeyError, OverflowError, UnicodeError) as e:
        raise Refused(f"the scheduler's queue cannot be read ({e!r:.100}); nothing removed",
                      hint="--force removes it anyway") from None
    if not queue.ok:
        raise Refused(f"the scheduler's queue cannot be read ({queue.error[:200]}); nothing "
                      "removed", hint="--force removes it anyway")
    named = queue.by_name()
    return [j.name for j in running if (j.sched_id and j.sched_id in queue.entries)
            or (j.token and j.token in named)]


def hold(run_dir: Path) -> Lock:
    """The run's lock, so that no monitor starts while its cluster copy goes; refused while a
    monitor serves the run (--force does not override: it would lose its cluster copy)."""
    lock = Lock(lock_path(run_dir))
    try:
        lock.acquire()
    except StateError as e:
        raise Refused(f"{e.message}; stop it first (its jobs still use the cluster copy)",
                      file=str(run_dir)) from None
    return lock


def check_rundir(run_dir: Path, rundir: str) -> None:
    """Remove only a directory named for this run."""
    if posixpath.basename(rundir.rstrip("/")) != run_dir.name or rundir.strip("/") in ("", "."):
        raise StateError(f"the run's cluster directory {rundir!r} is not named for the run; "
                         "nothing removed", file=str(run_dir))


def remove(remote: Remote, store: Store, now: float) -> None:
    """Remove the run's directory on the cluster and record that it is gone."""
    res = remote.transport.run_many([op("rmtree", remote.rundir)])[0]
    if res.rc != 0:
        raise TransportError(f"cannot remove {remote.rundir} on {remote.transport.host}: "
                             f"{res.stderr.strip()[-300:] or 'exit ' + str(res.rc)}")
    with store.transaction():
        store.set_meta("remote_removed", str(now))
        store.add_events([(now, "", "remote-removed", f"{remote.rundir} removed from "
                           f"{remote.transport.host}")])
