"""The local scheduler: each job script runs detached on the target host, no batch system."""

from __future__ import annotations

from jobauto.cluster.schedulers.common import fail, first_id
from jobauto.core.model import CommandResult, Ending, QueueEntry, QueueSnapshot

# Start the script (or its wrapper, $3, run by sh) in its own session so it outlives the monitor
# and the SSH channel; its output goes to qsub.ID.oPID like a batch job's. $$ of the inner shell
# is the pid echoed.
SUBMIT = (
    's=$1; n=$2; w=${3-}; [ -f "${w:-$s}" ] || { echo "no such job script: ${w:-$s}" >&2; exit 1; }; '
    'JOBAUTO_JOB_NAME=$n; export JOBAUTO_JOB_NAME; '
    # the batch ignores HUP/PIPE and a background job ignores INT/QUIT: give the job defaults
    'd=; if env --default-signal=HUP true 2>/dev/null; then d="env --default-signal=HUP,INT,QUIT,PIPE"; fi; '
    "$d setsid sh -c 'exec >\"$1.o$$\" 2>&1 </dev/null; if [ -n \"$2\" ]; then exec sh \"./$2\"; fi; "
    "if [ \"$(head -c 2 \"$1\")\" = \"#!\" ]; then exec \"./$1\"; else exec sh \"./$1\"; fi' "
    'jobauto-job "$s" "$w" </dev/null >/dev/null 2>&1 & echo $!'
)

# `jobauto workers` without a batch system: start N copies of the script, each detached in its
# own session (it outlives the SSH channel and the caller), stdout and stderr in NAME.oPID in
# the current directory, JOBAUTO_TASK_ID=1..N; print the pids on one line.
ARRAY = (
    'n=$1; name=$2; s=$3; [ -f "$s" ] || { echo "no such script: $s" >&2; exit 1; }; '
    'd=; if env --default-signal=HUP true 2>/dev/null; then d="env --default-signal=HUP,INT,QUIT,PIPE"; fi; '
    'i=1; pids=; while [ "$i" -le "$n" ]; do '
    "JOBAUTO_TASK_ID=$i $d setsid sh -c 'exec >\"$1.o$$\" 2>&1 </dev/null; exec \"./$2\"' "
    'jobauto-worker "$name" "$s" </dev/null >/dev/null 2>&1 & '
    'pids="$pids $!"; i=$((i + 1)); done; echo $pids'
)


class LocalAdapter:
    name = "local"
    can_find_by_name = False
    task_arrays = False   # no batch system: each job is its own process anyway

    def submit_argv(self, script: str, job_name: str, extra: list[str],
                    wrapper: str | None = None) -> list[str]:
        return ["sh", "-c", SUBMIT, "jobauto-local", script, job_name, wrapper or ""]

    def parse_submit(self, result: CommandResult) -> str:
        return first_id(result, "local start")

    def queue_argv(self, user: str | None) -> list[str]:
        return ["ps", "-e", "-o", "pid=,stat="]

    def parse_queue(self, result: CommandResult) -> QueueSnapshot:
        if result.rc != 0:
            return QueueSnapshot(False, error=str(fail(result, "ps")))
        entries: dict[str, QueueEntry] = {}
        for line in result.text.splitlines():
            parts = line.split()
            if len(parts) >= 2 and not parts[1].startswith("Z"):
                entries[parts[0]] = QueueEntry(parts[0], "", parts[1], running=True)  # a live process
        return QueueSnapshot(True, entries)

    def acct_argv(self, ids: list[str]) -> list[str] | None:
        return None  # a detached process leaves no record; its markers are all there is

    def parse_acct(self, result: CommandResult) -> dict[str, Ending]:
        return {}

    def cancel_argv(self, ids: list[str]) -> list[str]:
        # the job runs under setsid, so its pid is its process group: end the whole group. The
        # shell's own kill, always: dash's refuses `--`, and procps' reads `-PID` after a signal
        # as it should only with `--` (the transport's guard runs argv through sh)
        return ["sh", "-c", 'kill -TERM "$@"', "jobauto-cancel", *(f"-{i}" for i in ids)]

    def depend_args(self, ids: list[str]) -> list[str] | None:
        return None   # no queue to wait in: every job starts when it is submitted

    def array_args(self, n: int) -> list[str]:
        return []  # n separate processes, not an array

    def walltime_args(self, seconds: int) -> list[str]:
        return []  # nothing enforces a limit here: the workers stop themselves (--max-runtime)

    def array_submit_argv(self, script: str, job_name: str, n: int, extra: list[str]) -> list[str]:
        return ["sh", "-c", ARRAY, "jobauto-local", str(n), job_name, script]

    def parse_array_submit(self, result: CommandResult) -> str:
        """The workers' pids, space-separated."""
        pids = result.text.split()
        if result.rc != 0 or not pids or not all(p.isdigit() for p in pids):
            raise fail(result, "starting the workers")
        return " ".join(pids)

    def task_id(self, array_id: str, task: int) -> str:
        return f"{array_id}.{task}"
