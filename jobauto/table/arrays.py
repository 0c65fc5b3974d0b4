"""`jobauto workers`: submit N pull workers (`jobauto run`) as one array job on a cluster.

Three steps, each one round trip: validate everything first (arrayplan.py, which also writes
the batch script's text: nothing is sent for bad flags); check on the cluster (paths, the table,
jobauto and the command, as a batch task will see them); write the batch script next to the
table and submit it with the scheduler adapter's array options. Every value travels as an
argument of a fixed script, and every word written into the batch script is shell-quoted, so
names with spaces or quotes are inert.
docs/workers.md has the decisions (the --max-runtime rule, where files go, what is printed).
"""

from __future__ import annotations

import posixpath
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from jobauto.cluster.host import Host, open_host
from jobauto.cluster.transport.base import Transport
from jobauto.core.config import Options
from jobauto.core.errors import ConfigError, SchedulerError, TransportError
from jobauto.core.model import Command, CommandResult
from jobauto.table.arrayplan import Paths, Plan, WorkersOptions, plan, run_argv, script_text

CHECK_TIMEOUT_S = 120.0
SUBMIT_TIMEOUT_S = 120.0


@dataclass
class Submission:
    scheduler: str
    host: str
    n: int
    array_id: str                # "" for a dry run; the pids for the local scheduler
    paths: Paths
    script: str                  # its full path on the cluster
    script_text: str
    submit_argv: list[str]       # run in paths.log_dir, the script's name last (local: too)
    run_argv: list[str]          # what each task runs
    status_argv: list[str]
    job_name: str = ""


# -- the check and the submission, as they run on the cluster -------------------------------------
def cluster_path(path: str, local: bool) -> str:
    """A path as the check script resolves it: absolute stays; ~/ and relative paths are from
    the remote home, or from the current directory without --remote."""
    if local:
        return str(Path(path).expanduser().absolute())
    if path == "~":
        return ""
    return path[2:] if path.startswith("~/") else path


# On the cluster, as a batch task will run: resolve the paths (~/ and relative ones from $HOME),
# check the table, the directories, the user's --setup lines, jobauto (which must start and read
# the table) and the command. Prints "key<TAB>value" lines, then "ok"; or "error<TAB>FLAG<TAB>why".
CHECK = r"""
db=$1; wd=$2; ld=$3; setup=$4; c=$5; unsafe=$6; shift 6
fail() { printf 'error\t%s\t%s\n' "$1" "$2"; exit 1; }
abs() { case $1 in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$HOME" "$1" ;; esac; }
db=$(abs "$db")
if [ -n "$wd" ]; then wd=$(abs "$wd"); else wd=$(dirname -- "$db"); fi
if [ -n "$ld" ]; then ld=$(abs "$ld"); else ld=$db.workers; fi
printf 'db\t%s\nworkdir\t%s\nlogdir\t%s\n' "$db" "$wd" "$ld"
me=$(id -un)
[ -e "$db" ] || fail --db "no such file: $db"
[ -f "$db" ] || fail --db "not a file: $db"
{ [ -r "$db" ] && [ -w "$db" ]; } || fail --db "$me may not read and write $db"
dir=$(dirname -- "$db")
{ [ -w "$dir" ] && [ -x "$dir" ]; } || fail --db "$me may not create files in $dir (SQLite writes its journal next to the table)"
[ -d "$wd" ] || fail --workdir "no such directory: $wd"
if [ -e "$ld" ]; then { [ -d "$ld" ] && [ -w "$ld" ]; } || fail --log-dir "not a directory $me may write to: $ld"; fi
cd -- "$wd" || fail --workdir "cannot enter $wd"
eval "$setup" </dev/null >/dev/null 2>&1
cd -- "$wd" || fail --workdir "cannot enter $wd"
exe=$1; shift
case $exe in
  /*) [ -x "$exe" ] || fail --jobauto "not an executable file: $exe" ;;
  */*) [ -x "$exe" ] || fail --jobauto "not an executable file: $wd/$exe"; exe=$PWD/$exe ;;
  *) p=$(type -P -- "$exe") || fail --jobauto "$exe: command not found (install jobauto there, or give its path with --jobauto, or load it with --setup)"; exe=$p ;;
esac
printf 'jobauto\t%s\n' "$exe"
out=$("$exe" "$@" version 2>&1) || fail --jobauto "$(printf '%s' "$out" | tail -n 3 | tr '\t\n' '  ')"
out=$("$exe" "$@" status "$db" $unsafe 2>&1 >/dev/null) || fail --db "$(printf '%s' "$out" | tail -n 3 | tr '\t\n' '  ')"
case $c in
  */*) [ -x "$c" ] || fail COMMAND "not found or not executable in $wd: $c" ;;
  *) type -P -- "$c" >/dev/null || fail COMMAND "$c: command not found" ;;
esac
echo ok
"""

# Write the script (never over an existing file) in the log directory, then submit it from
# there: the remaining arguments are the submit command. A refused submission takes its script
# (and the directory, if it made it and it is empty) away again.
SUBMIT = r"""
d=$1; f=$2; text=$3; shift 3
new=; [ -d "$d" ] || new=1
{ mkdir -p -- "$d" 2>/dev/null && cd -- "$d"; } || { echo "jobauto-workers: cannot create the directory $d" >&2; exit 97; }
if ! (set -C; printf '%s' "$text" > "$f") 2>/dev/null; then
  [ -e "$f" ] && { echo "jobauto-workers: exists: $d/$f" >&2; exit 98; }
  echo "jobauto-workers: cannot write $d/$f" >&2; exit 97
fi
chmod 755 "$f" || exit 97
"$@"; rc=$?
if [ "$rc" -ne 0 ]; then rm -f -- "$f"; [ -z "$new" ] || { cd / && rmdir -- "$d" 2>/dev/null; }; fi
exit "$rc"
"""


def check_argv(p: Plan, o: WorkersOptions, local: bool) -> list[str]:
    db = cluster_path(p.db, local)
    wd = cluster_path(p.workdir, local) if p.workdir else ""
    ld = cluster_path(p.log_dir, local) if p.log_dir else ""
    return ["bash", "-c", CHECK, "jobauto-workers-check", db, wd, ld, "\n".join(o.setup),
            first_word(p.command), "--unsafe-fs" if o.unsafe_fs else "", *p.jobauto]


def first_word(command: list[str]) -> str:
    """The program `jobauto run` will start (one argument is split like a shell would)."""
    return shlex.split(command[0])[0] if len(command) == 1 else command[0]


def parse_check(result: CommandResult, host: str) -> Paths:
    values: dict[str, str] = {}
    ok = False
    for line in result.text.splitlines():
        key, _, value = line.partition("\t")
        if key == "error":
            flag, _, why = value.partition("\t")
            raise ConfigError(f"{why} (on {host})", flag=flag)
        if key == "ok":
            ok = True
        elif key in ("db", "workdir", "logdir", "jobauto"):
            values[key] = value
    if not ok or result.rc != 0:
        said = " ".join((result.stderr.strip() or result.text.strip()).split())[-400:]
        raise TransportError(f"the check on {host} stopped (exit {result.rc}): "
                             f"{said or 'no output'}; does bash run there, and do the --setup "
                             "lines end normally?", transient=False, flag="--remote")
    return Paths(values["db"], values["workdir"], values["logdir"], values["jobauto"])


# -- the three steps ------------------------------------------------------------------------------
def prepare(o: WorkersOptions, p: Plan, host: Host) -> Paths:
    """Check on the cluster (PBS: tell Pro from Torque, whose array options differ); return the
    resolved paths."""
    from jobauto.cluster.schedulers.pbs import PbsAdapter, is_pbspro, version_argv

    cmds = [Command.of(check_argv(p, o, o.remote is None))]
    if isinstance(host.adapter, PbsAdapter):
        cmds.append(Command.of(host.sched(version_argv())))
    results = host.transport.run_many(cmds, timeout=CHECK_TIMEOUT_S)
    paths = parse_check(results[0], host.name)
    if isinstance(host.adapter, PbsAdapter):
        host.adapter.pro = is_pbspro(results[1])
    return paths


def submit(o: WorkersOptions, p: Plan, host: Host, paths: Paths, now: float) -> Submission:
    """Write the script and submit it (unless --dry-run); return what was done."""
    adapter, transport = host.adapter, host.transport
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    wall = adapter.walltime_args(p.walltime_s) if p.walltime_s is not None else []
    status = [paths.jobauto, *p.jobauto[1:], "status", paths.db,
              *(["--unsafe-fs"] if o.unsafe_fs else [])]
    for attempt in range(1, 21):
        name = f"worker-{stamp}.sh" if attempt == 1 else f"worker-{stamp}-{attempt}.sh"
        argv = adapter.array_submit_argv(name, p.job_name, o.n, [*wall, *o.qsub_args])
        text = script_text(o, p, paths, argv, adapter.name, wall, now)
        sub = Submission(adapter.name, transport.host, o.n, "", paths,
                         posixpath.join(paths.log_dir, name), text, argv,
                         run_argv(o, p, paths), status, p.job_name)
        if o.dry_run:
            return sub
        full = ["sh", "-c", SUBMIT, "jobauto-workers", paths.log_dir, name, text,
                *host.sched(argv)]
        try:
            res = transport.run(full, timeout=SUBMIT_TIMEOUT_S)
        except TransportError as e:
            raise TransportError(f"{e.message}; whether the workers were submitted is unknown: "
                                 f"look at the queue and {paths.log_dir} before running this "
                                 "again", transient=False, flag="--remote") from None
        said = res.stderr.strip()
        if res.rc == 98 and said.startswith("jobauto-workers: exists"):
            continue  # two calls within a second: take the next name
        if res.rc == 97 and said.startswith("jobauto-workers:"):
            raise ConfigError(said.removeprefix("jobauto-workers: ") + f" (on {transport.host})",
                              flag="--log-dir")
        try:
            sub.array_id = adapter.parse_array_submit(res)
        except SchedulerError as e:
            if res.rc == 0:
                raise SchedulerError(f"{e.message}; the workers may have been submitted: look "
                                     f"at the queue before running this again",
                                     flag="--scheduler") from None
            e.flag = "--qsub-args" if o.qsub_args else "--scheduler"
            raise
        return sub
    raise ConfigError(f"too many worker scripts named worker-{stamp}*.sh", flag="--log-dir")


def start_workers(o: WorkersOptions, *, transport: Transport | None = None,
                  now: float | None = None) -> Submission:
    """Validate, connect, check, write the script, submit. Raise before submitting anything."""
    p = plan(o)
    opts = Options(remote=o.remote, user=o.user, ssh_config=o.ssh_config, scheduler=o.scheduler,
                   scheduler_bin=list(o.scheduler_bin))
    host = open_host(opts, transport)
    try:
        if host.adapter.name == "local" and o.qsub_args:
            raise ConfigError("the local scheduler has no submit options (it starts processes)",
                              flag="--qsub-args")
        paths = prepare(o, p, host)
        return submit(o, p, host, paths, time.time() if now is None else now)
    finally:
        if transport is None:
            host.close()


# -- what is printed ------------------------------------------------------------------------------
# Local workers are processes: ps takes their pids comma-separated, kill space-separated (a
# worker's SIGTERM returns its running jobs to pending and ends it).
QUEUE = {"sge": 'qstat -u "$USER"', "slurm": "squeue -j {id}", "pbs": 'qstat -u "$USER"',
         "local": "ps -o pid,etime,args -p {pids}"}
STOP = {"sge": "qdel {id}", "slurm": "scancel {id}", "pbs": "qdel {id}", "local": "kill {id}"}
LOGS = {"sge": "{name}.oJOB.TASK and {name}.eJOB.TASK",
        "slurm": "{name}.oJOB.TASK and {name}.eJOB.TASK",
        "pbs": "{name}.oJOB-TASK (Torque) or {name}.oJOB.TASK", "local": "{name}.oPID"}


def describe(sub: Submission, remote: str | None) -> str:
    """The report: what was submitted, where its files are, how to watch and stop it."""
    where = f"on {remote}" if remote else "on this machine"

    def there(cmd: str) -> str:
        return f"ssh {shlex.quote(remote)} {shlex.quote(cmd)}" if remote else cmd

    ids = {"id": sub.array_id, "pids": ",".join(sub.array_id.split())}
    if not sub.array_id:
        head = f"--dry-run: would submit {sub.n} worker(s) {where} ({sub.scheduler}); nothing written"
    elif sub.scheduler == "local":
        head = f"started {sub.n} worker(s) {where}, pids {sub.array_id}"
    else:
        head = f"submitted {sub.n} worker(s) {where} as {sub.scheduler} array job {sub.array_id}"
    lines = [f"jobauto workers: {head}",
             f"  each runs:  {shlex.join(sub.run_argv)}",
             f"  script:     {sub.script}",
             f"  logs:       {sub.paths.log_dir}/ ({LOGS[sub.scheduler].format(name=sub.job_name)})"]
    if not sub.array_id:
        submit = f"cd {shlex.quote(sub.paths.log_dir)} && {shlex.join(sub.submit_argv)}"
        return "\n".join([*lines, f"  submit:     {submit}", "", sub.script_text.rstrip("\n")])
    lines += [f"  progress:   {there(shlex.join(sub.status_argv))}",
              f"  queue:      {there(QUEUE[sub.scheduler].format(**ids))}",
              f"  stop:       {there(STOP[sub.scheduler].format(**ids))}"
              "   (running jobs return to pending; docs/workers.md)",
              "  more:       run this command again: each call adds a new set of workers"]
    return "\n".join(lines)
