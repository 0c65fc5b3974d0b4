"""The cluster side of each cycle's scan on a 100,000-job run: remote syscalls, time, bytes.

The "cluster" is this machine (the local transport runs the same commands the SSH transport
sends). A run of --jobs jobs in --dirs directories (chains: the jobs of a directory depend on each
other), each job with its script, its dependency file and --extra output files once it ran, is
pushed (rsync -a, as the SSH transport does, or cp -a) and stamped. Then:

1. first cycle: the bytes the scan of the first cycle after the push sends back;
2. steady cycles: half the jobs are done (finished markers, output files), --running jobs run in
   as many directories; before each cycle --finish running jobs write their markers and as many
   new ones start (writing their output files). Each cycle's remote commands are run under
   `strace -f -c` (metadata system calls: the stat, getdents and open families, and the other
   calls that touch names: access, readlink, mkdir, unlink, rename, utimensat, chdir) and, in a
   second run without strace, timed (wall clock).

"old" is the scan as it was before issue 14 (kept below, verbatim): the whole tree every cycle.
"new" is this version: the stamp, then the look at the running jobs' directories
(run/mirror.py `look`); its sweep (the whole tree, every --sweep-every) is measured once, as
"sweep", from the stamp of the push. Medians over --cycles cycles. strace is installed with
apt-get when missing. Nothing is asserted: the figures go to bench/README.md.

    python bench/scan_cost.py [--jobs 100000] [--dirs 10000] [--extra 3] [--running 100]
                              [--finish 10] [--cycles 7] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jobauto.core.files import SCAN_NOTES  # noqa: E402,F401  (OLD_SCAN names it)
from jobauto.run.mirror import look_commands, scan_command, stamp_command  # noqa: E402
from jobauto.run.scantar import FILE_MAX, MARKER_MAX, parse_tar  # noqa: E402

# The scan before issue 14 (git c0212b5, run/mirror.py OPS["scan"]): stamp, then find over the
# whole tree, every cycle; its cut copies' directory made and removed every time.
OLD_SCAN = (
    'd=$1; gen=$2; base=$3; hd=$4; max=$5; cd -- "$d" || exit 3; '
    'mkdir -p .jobauto && touch ".jobauto/scan.$gen" || exit 4; '
    'h=.jobauto/heads/$gen; rm -rf -- "$h"; mkdir -p -- "$h/.jobauto" || exit 4; l=$h/' + SCAN_NOTES + '; '
    'set --; if [ -n "$base" ] && [ -e ".jobauto/scan.$base" ]; then set -- -cnewer ".jobauto/scan.$base"; fi; '
    "{ find . -path ./.jobauto -prune -o -type f \\( -name 'qsub.finished.*' -o -name 'qsub.failed.*' "
    "-o -name 'qsub.dependency.*' \\) \"$@\" -printf '%s %p\\n' | "
    'while IFS= read -r e; do n=${e%% *}; f=${e#* }; case $f in '
    '*/qsub.dependency.*) if [ "$n" -gt "$max" ]; then printf "S\\t%s\\t%s\\n" "$n" "$f" >> "$l"; continue; fi; '
    'printf "%s\\n" "$f"; s="${f%/*}/qsub.${f##*/qsub.dependency.}"; [ -f "$s" ] || continue; '
    'n=$(wc -c < "$s") || continue; if [ "$n" -gt "$max" ]; then printf "S\\t%s\\t%s\\n" "$n" "$s" >> "$l"; '
    'else printf "%s\\n" "$s"; fi;; '
    '*) if [ "$n" -le "$hd" ]; then printf "%s\\n" "$f"; continue; fi; t=$h/${f#./}; '
    'mkdir -p -- "${t%/*}" && head -c "$hd" -- "$f" > "$t" && touch -r "$f" -- "$t" && '
    'printf "./%s\\n" "$t" && printf "H\\t%s\\t%s\\n" "$n" "$f" >> "$l";; esac; done; '
    '[ -s "$l" ] && printf "./%s\\n" "$l"; } | '
    "tar --ignore-failed-read --no-recursion --transform 's|^\\./\\.jobauto/heads/[0-9]*/|./|' "
    "-b 1 -T - -cf - 2>/dev/null; "
    'rm -rf -- "$h"; for s in .jobauto/scan.* .jobauto/heads/*; do n=${s##*[./]}; case $n in *[!0-9]*|"") continue;; esac; '
    '[ -n "$base" ] && [ "$n" -lt "$base" ] && rm -rf -- "$s"; done; exit 0'
)

# the system calls counted as metadata operations on the file system
METADATA = ("stat", "getdents", "open", "access", "readlink", "mkdir", "unlink", "rmdir", "rename",
            "utime", "chdir", "creat", "link", "symlink", "chmod", "chown", "truncate")


def build(remote: Path, local: Path, jobs: int, dirs: int) -> list[str]:
    """The job tree as the user made it (scripts, dependency files), pushed to REMOTE and stamped
    as jobmon does; returns the job names, by directory."""
    per = max(jobs // dirs, 1)
    names = []
    for d in range(dirs):
        p = local / f"m{d}"
        p.mkdir(parents=True)
        for k in range(per):
            (p / f"qsub.{k}").write_text("#!/bin/sh\n#$ -cwd\nlmf-MPIK --quiet ctrl.si > out.lmf\n"
                                         + "# " + "x" * 900 + "\n")
            (p / f"qsub.dependency.{k}").write_text(f"qsub.finished.{k - 1}\n" if k else "")
            names.append(f"m{d}/qsub.{k}")
    if shutil.which("rsync"):
        subprocess.run(["rsync", "-a", f"{local}/", f"{remote}/"], check=True)
    else:
        subprocess.run(["cp", "-a", f"{local}/.", str(remote)], check=True)
    run(stamp_command(str(remote), 0, None).argv)
    return names


def run(argv: tuple[str, ...] | list[str]) -> bytes:
    p = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
    if p.returncode != 0:
        raise SystemExit(f"remote command failed ({p.returncode}): {argv[3:6]}")
    return p.stdout


def old_cmd(remote: Path, gen: int, base: int | None) -> list[str]:
    return ["sh", "-c", OLD_SCAN, "jobauto-scan", str(remote), str(gen),
            "" if base is None else str(base), str(MARKER_MAX), str(FILE_MAX)]


def new_cmds(remote: Path, gen: int, dirs: list[str], sweep_base: int) -> list[tuple[str, ...]]:
    base = max(gen - 2, 0)
    return [stamp_command(str(remote), gen, base, sweep_base).argv,
            *(c.argv for c in look_commands(str(remote), gen, base, dirs))]


def straced(cmds: list[tuple[str, ...]] | list[list[str]], tmp: Path) -> dict[str, int]:
    """System calls by name of running CMDS one after the other (with their children)."""
    out: dict[str, int] = {}
    for i, argv in enumerate(cmds):
        log = tmp / f"strace.{i}"
        subprocess.run(["strace", "-f", "-c", "-o", str(log), *argv], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[-1].isidentifier() and parts[0][0].isdigit() and parts[-1] != "total":
                calls = int(parts[3])
                out[parts[-1]] = out.get(parts[-1], 0) + calls
    return out


def metadata(counts: dict[str, int]) -> int:
    return sum(n for name, n in counts.items() if any(m in name for m in METADATA))


def timed(cmds: list[tuple[str, ...]] | list[list[str]]) -> tuple[float, int]:
    t = time.perf_counter()
    size = sum(len(run(c)) for c in cmds)
    return time.perf_counter() - t, size


def ensure_strace() -> None:
    if shutil.which("strace"):
        return
    print("strace is missing: apt-get install -y strace", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "strace"], check=True,
                   stdout=subprocess.DEVNULL)


def keep_push_stamp(remote: Path, tmp: Path) -> None:
    """The old scan removes the stamps older than its base, the push's too; the new one keeps
    the stamp its sweep starts from: put it back (same mtime) after each old scan."""
    subprocess.run(["touch", "-r", str(tmp / "push-stamp"), str(remote / ".jobauto" / "scan.0")],
                   check=True)


def touch(path: Path, data: str = "") -> None:
    path.write_text(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--dirs", type=int, default=10_000)
    ap.add_argument("--extra", type=int, default=3, help="output files each job leaves")
    ap.add_argument("--running", type=int, default=100)
    ap.add_argument("--finish", type=int, default=10, help="jobs ending (and starting) per cycle")
    ap.add_argument("--cycles", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the trees (printed) afterwards")
    a = ap.parse_args()
    ensure_strace()
    tmp = Path(tempfile.mkdtemp(prefix="jobauto-scan-cost-"))
    remote, local = tmp / "remote", tmp / "local"
    remote.mkdir()
    try:
        t = time.perf_counter()
        names = build(remote, local, a.jobs, a.dirs)
        subprocess.run(["touch", "-r", str(remote / ".jobauto" / "scan.0"), str(tmp / "push-stamp")],
                       check=True)
        print(f"{a.jobs} jobs in {a.dirs} directories, pushed in {time.perf_counter() - t:.0f} s",
              flush=True)
        # 1. the first cycle after the push (nothing is running yet at its look), and the first
        # sweep from the push's stamp
        first_old = len(run(old_cmd(remote, 1, 0)))
        first_new = sum(len(run(c)) for c in new_cmds(remote, 1, [], 0))
        sweep_first = len(run(scan_command(str(remote), 1, 0).argv))
        # 2. half-way: every directory's first half done, with its markers and output files
        per = max(a.jobs // a.dirs, 1)
        by_dir: dict[str, list[str]] = {}
        for n in names:
            by_dir.setdefault(n.split("/")[0], []).append(n)
        def ran(name: str, finished: bool) -> None:
            d, script = name.split("/")
            k = script[len("qsub."):]
            for x in range(a.extra):
                touch(remote / d / f"{script}.o{x}{k}", "some output\n" * 20)
            if finished:
                touch(remote / d / f"qsub.finished.{k}")
        for jobs in by_dir.values():
            for n in jobs[:per // 2]:
                ran(n, True)
        step = max(len(by_dir) // a.running, 1)
        running = [by_dir[f"m{i}"][per // 2] for i in range(0, len(by_dir), step)][:a.running]
        for n in running:
            ran(n, False)
        nxt = {n.split("/")[0]: per // 2 + 1 for n in running}
        gen = 2
        run(stamp_command(str(remote), gen, 0).argv)
        gen += 1
        run(stamp_command(str(remote), gen, 0).argv)
        rows: dict[str, list[float]] = {k: [] for k in ("old_meta", "new_meta", "old_s", "new_s",
                                                        "old_b", "new_b", "old_all", "new_all")}
        for _ in range(a.cycles):
            # between two cycles: FINISH running jobs end, as many start in their directories
            for n in running[:a.finish]:
                touch(remote / n.split("/")[0] / f"qsub.finished.{n.split('.')[-1]}")
            ended, running = running[:a.finish], running[a.finish:]
            for n in ended:
                d = n.split("/")[0]
                if nxt[d] < per:
                    new = by_dir[d][nxt[d]]
                    nxt[d] += 1
                    ran(new, False)
                    running.append(new)
            gen += 1
            dirs = sorted({n.split("/")[0] for n in running + ended})
            # the old scan and the new look see the same changes
            old = [old_cmd(remote, gen, gen - 2)]
            new = new_cmds(remote, gen, dirs, 0)
            oc = straced(old, tmp)
            keep_push_stamp(remote, tmp)
            nc = straced(new, tmp)
            rows["old_meta"].append(metadata(oc))
            rows["new_meta"].append(metadata(nc))
            rows["old_all"].append(sum(oc.values()))
            rows["new_all"].append(sum(nc.values()))
            s, b = timed(old)
            keep_push_stamp(remote, tmp)
            rows["old_s"].append(s)
            rows["old_b"].append(b)
            s, b = timed(new)
            rows["new_s"].append(s)
            rows["new_b"].append(b)
        sweep_cmd = scan_command(str(remote), gen + 1, 0).argv
        sc = straced([sweep_cmd], tmp)
        sweep_s, sweep_b = timed([sweep_cmd])
        swept = len(parse_tar(run(sweep_cmd)).files)
        med = {k: statistics.median(v) for k, v in rows.items()}
        top = ", ".join(f"{k} {v}" for k, v in sorted(oc.items(), key=lambda kv: -kv[1])[:5])
        ntop = ", ".join(f"{k} {v}" for k, v in sorted(nc.items(), key=lambda kv: -kv[1])[:5])
        print(f"\nsteady cycle ({a.running} running, {a.finish} ending per cycle), median of {a.cycles}:")
        print(f"{'':6} {'metadata syscalls':>18} {'all syscalls':>13} {'remote time':>12} {'bytes':>10}")
        for k in ("old", "new"):
            print(f"{k:6} {med[k + '_meta']:>18.0f} {med[k + '_all']:>13.0f} "
                  f"{med[k + '_s'] * 1000:>9.1f} ms {med[k + '_b']:>10.0f}")
        print(f"sweep  {metadata(sc):>18} {sum(sc.values()):>13} {sweep_s * 1000:>9.1f} ms "
              f"{sweep_b:>10}   (the whole tree once every --sweep-every, from the push's stamp)")
        print(f"\nold, last cycle: {top}\nnew, last cycle: {ntop}")
        print(f"\nfirst cycle after the push: old {first_old} bytes, new {first_new} bytes; "
              f"a sweep from the push's stamp: {sweep_first} bytes right after the push, "
              f"{sweep_b} bytes ({swept} markers) half-way")
    finally:
        if a.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
