# tests/cluster/capture-lib.sh - helpers for capture-sge.sh / capture-slurm.sh (sourced).
# A capture runs one command as jobauto over `ssh -F /tmp/jobauto-cluster/ssh_config testhost`
# in ~/capture and stores <name>.out (stdout, byte for byte), <name>.err (stderr; only written
# when not empty) and <name>.rc (exit status) in $OUT, and adds a row to $OUT/README.md.
# shellcheck source=lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"
need_root
SSH=(ssh -F "$STATE_DIR/ssh_config" testhost)
ROWS="$(mktemp)"
# On any exit, delete the jobs this capture submitted (by name: never someone else's) so that
# sleeping leftovers do not hold the slots other tests need. Scripts define cancel_jobs.
trap 'rm -f "$ROWS"; cancel_jobs >/dev/null 2>&1 || true' EXIT

rx() { "${SSH[@]}" "cd capture && $1" </dev/null; }      # run in ~/capture as jobauto
as_user() { runuser -u "$TEST_USER" -- "$@"; }           # local polling, not captured

# fresh_workdir: recreate ~/capture with the job scripts the captures submit.
fresh_workdir() {
    "${SSH[@]}" 'rm -rf capture && mkdir capture && cd capture && bash -s' <<'EOF'
printf '#!/bin/bash\necho "ok on $(hostname)"\nsleep 1\n' >ok.sh
printf '#!/bin/bash\necho "about to fail"\nexit 3\n' >exit3.sh
printf '#!/bin/bash\nsleep "${1:-300}"\n' >sleep.sh
chmod +x ok.sh exit3.sh sleep.sh
EOF
}

# cap NAME COMMAND [NOTE]: capture COMMAND (a remote shell command line) as NAME.
cap() {
    local name=$1 cmd=$2 note=${3:-} rc=0
    rx "$cmd" >"$OUT/$name.out" 2>"$OUT/$name.err" || rc=$?
    [ -s "$OUT/$name.err" ] || rm -f "$OUT/$name.err"
    echo "$rc" >"$OUT/$name.rc"
    # shellcheck disable=SC2016  # the backquotes are Markdown
    printf '| `%s` | `%s` | %s | %s |\n' "$name" "${cmd//|/\\|}" "$rc" "${note//|/\\|}" >>"$ROWS"
}

# adapter_cmd SCHEDULER METHOD ARG...: the shell command line of the jobauto adapter's own
# command (e.g. `adapter_cmd slurm acct_argv 12 13`), so its real output can be captured.
REPO="$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)"
adapter_cmd() {
    PYTHONPATH="$REPO" python3 -c 'import shlex, sys
from jobauto.cluster.schedulers import adapter_for
sched, method, *args = sys.argv[1:]
fn = getattr(adapter_for(sched), method)
print(shlex.join(fn(args) if method in ("acct_argv", "cancel_argv") else fn(*args)))' "$@"
}

# capture_id NAME: the job id printed by a captured submit (first number in NAME.out).
capture_id() { grep -o '^[0-9]*' "$OUT/$1.out" | head -1; }

# poll SECONDS DESCRIPTION CMD...: wait_for, but fail the capture run with a message.
poll() { local s=$1 what=$2; shift 2; wait_for "$s" "$@" || die "timed out waiting for $what"; }

# write_readme TITLE INTRO: README.md = intro + the table of everything captured.
write_readme() {
    {
        printf '# %s\n\n%s\n\n' "$1" "$2"
        cat <<'EOF'
Job scripts in `~/capture`: `ok.sh` (echo, sleep 1, exit 0), `exit3.sh` (echo, exit 3),
`sleep.sh N` (sleep N seconds, default 300). Rows below are in capture order; job ids differ
on every run.

Convention, for every capture `NAME`:

* `NAME.out`: the command's stdout, byte for byte;
* `NAME.err`: its stderr, only present when stderr was not empty;
* `NAME.rc`: its exit status, as a decimal number and a newline.

| name | command (run as `jobauto` in `~/capture` via `ssh -F /tmp/jobauto-cluster/ssh_config testhost`) | rc | note |
|---|---|---|---|
EOF
        cat "$ROWS"
    } >"$OUT/README.md"
}

# count_captures DIR: how many captures DIR holds.
count_captures() { local f n=0; for f in "$1"/*.rc; do [ -e "$f" ] && n=$((n + 1)); done; echo "$n"; }
