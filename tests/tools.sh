#!/usr/bin/env bash
# tests/tools.sh - install the programs the tests drive (as root, Debian): graphviz (`dot`,
# for jobauto graph/report), chromium (the report opened in a headless browser), tmux
# (`status --watch` captured with capture-pane), sshfs (one directory of the test cluster
# mounted twice: a job table on a file system whose locks stay on one host), zsh (the syntax
# of `jobauto completion zsh`). Idempotent:
# installs only what is missing.
set -euo pipefail
need=()
command -v dot >/dev/null || need+=(graphviz)
command -v chromium >/dev/null || need+=(chromium)
command -v tmux >/dev/null || need+=(tmux)
command -v sshfs >/dev/null || need+=(sshfs)
command -v zsh >/dev/null || need+=(zsh)
if [ ${#need[@]} -eq 0 ]; then
    echo "TOOLS READY dot chromium tmux sshfs zsh"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "tools.sh: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"; trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" fonts-dejavu-core; } >"$log" 2>&1; then
    tail -20 "$log" >&2
    echo "tools.sh: FAILED: apt-get install ${need[*]}" >&2
    exit 1
fi
echo "TOOLS READY dot chromium tmux sshfs zsh (installed ${need[*]})"
