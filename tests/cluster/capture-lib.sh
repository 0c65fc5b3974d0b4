# tests/cluster/capture-lib.sh - helpers for capture-sge.sh / capture-slurm.sh (sourced).
# A capture runs one command as jobauto over `ssh -F /tmp/jobauto-cluster/ssh_config testhost`
# in ~/capture and stores <name>.out (stdout, byte for byte), <name>.err (stderr; only written
# when not empty) and <name>.rc (exit status) in $OUT, and adds a row to $OUT/README.md.
. "$(dirname "$(readlink -f "$0")")/lib.sh"
need_root
SSH=(ssh -F "$STATE_DIR/ssh_config" testhost)
ROWS="$(mktemp)"
trap 'rm -f "$ROWS"' EXIT

rx() { "${SSH[@]}" "cd capture && $1" </dev/null; }      # run in ~/capture as jobauto
as_user() { runuser -u "$TEST_USER" -- "$@"; }           # local polling, not captured

# fresh_workdir: recreate ~/capture and put the job scripts given on stdin (a shell script) there
fresh_workdir() { "${SSH[@]}" 'rm -rf capture && mkdir capture && cd capture && bash -s'; }

# cap NAME COMMAND [NOTE]: capture COMMAND (a remote shell command line) as NAME.
cap() {
    local name=$1 cmd=$2 note=${3:-} rc=0
    rx "$cmd" >"$OUT/$name.out" 2>"$OUT/$name.err" || rc=$?
    [ -s "$OUT/$name.err" ] || rm -f "$OUT/$name.err"
    echo "$rc" >"$OUT/$name.rc"
    printf '| `%s` | `%s` | %s | %s |\n' "$name" "${cmd//|/\\|}" "$rc" "${note//|/\\|}" >>"$ROWS"
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
