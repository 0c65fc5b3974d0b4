#!/usr/bin/env python3
"""Prepare a dummy ecalj campaign for jobmon: LDA, QSGW iterations and a band plot per material.

Reads the structures in POSCARALL (VASP 5 POSCARs, one after another, each starting with its
name line) and writes LDIR/init/, the tree that jobmon copies into a dated run directory:

  LDIR/init/<material>/POSCAR
  LDIR/init/<material>/qsub.0            LDA (lmfa, lmf)              writes rst.<material>
  LDIR/init/<material>/qsub.1 .. qsub.N  QSGW iteration 1 .. N        writes sigm.<material>
  LDIR/init/<material>/qsub.N+1          band plot                    writes bnd.<material>.dat
  LDIR/init/<material>/qsub.dependency.K each names qsub.finished.K-1 (empty for K=0)
  LDIR/init/summary/qsub.0               after every material: the table summary.txt

<material> is the first word of the structure's name line. The job scripts run the programs
of jobmon's --binpath (the dummies in examples/ecalj/bin, or real ones you swap in) with
--maxcore MPI processes, and write the marker files jobmon watches (see templates/README.md).
"""

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

SUMMARY = "summary"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*\Z")

EPILOG = """\
example:
  python3 examples/ecalj/prepare.py examples/ecalj/POSCARALL run/foobar --iterations 3
  jobmon --ldir=run/foobar --rdir=run/remote/foobar --binpath=$PWD/examples/ecalj/bin \\
         --maxcore=2 --scheduler=local

TSUBAME (Grid Engine; the group goes to jobmon --qsub-args="-g GROUP"):
  python3 examples/ecalj/prepare.py POSCARALL ~/calc/foobar \\
          --directive="-l cpu_4=1" --directive="-l h_rt=1:00:00"
"""

# Directive lines per scheduler. Grid Engine's are comments to every other scheduler and to the
# local one, so the default scripts run unchanged under jobmon --scheduler=sge or local.
HEADERS = {
    "sge": ("#$ ", ["-S /bin/bash", "-cwd", "-j y"]),
    "slurm": ("#SBATCH ", ["--ntasks=__maxcore__", "--output=qsub.__id__.o%j"]),
    "pbs": ("#PBS ", ["-S /bin/bash", "-j oe",
                      "-l select=1:ncpus=__maxcore__:mpiprocs=__maxcore__"]),
    "local": ("", []),
}
PBS_CD = """
# PBS starts the script in $HOME; jobmon submits from the job's directory, kept in PBS_O_WORKDIR.
cd "${PBS_O_WORKDIR:-.}" || exit 1
"""

# The marker logic these scripts carry themselves, as every template did before jobmon wrote the
# markers through its wrapper (templates/README.md). The example keeps it on purpose: a script
# that writes its own markers must keep working, and jobmon then writes none of its own.
MARKERS = r"""# >>> jobauto markers >>> (the same block in every template; your commands go in work() below)
# jobmon learns how this job ended only from two files this block writes in the job's directory:
#   qsub.failed.ID    the exit code; written first, and only when the job failed
#   qsub.finished.ID  the exit code; written last, always, whether the job succeeded or failed
# Each is written under a hidden temporary name and renamed into place, so a marker that exists
# is complete. A scheduler warning signal (soft walltime, qdel/scancel) stops the work and still
# writes both markers; only SIGKILL (hard walltime, node failure) leaves none, and jobmon then
# notices the job vanished from the queue.
jobauto_id='__id__'
jobauto_dir=$PWD
jobauto_work_pid=
jobauto_signals=(TERM INT HUP USR1 USR2 XCPU)

jobauto_now() { date '+%Y-%m-%dT%H:%M:%S'; }

jobauto_put_marker() {  # write $2 into marker $1 atomically
    local tmp="$jobauto_dir/.$1.tmp.$$"
    if printf '%s\n' "$2" >"$tmp" && mv -f "$tmp" "$jobauto_dir/$1"; then
        return 0
    fi
    rm -f "$tmp"
    echo "jobauto: cannot write $jobauto_dir/$1" >&2
    return 1
}

jobauto_kill_tree() {  # TERM process $1 and its descendants, children first so none is orphaned
    local child
    for child in $(pgrep -P "$1" 2>/dev/null); do
        jobauto_kill_tree "$child"
    done
    kill -TERM "$1" 2>/dev/null
}

jobauto_on_signal() {
    trap '' "${jobauto_signals[@]}"
    echo "jobauto: job $jobauto_id got SIG$1 at $(jobauto_now); stopping its work" >&2
    if [ -n "$jobauto_work_pid" ]; then
        jobauto_kill_tree "$jobauto_work_pid"
    fi
    exit $((128 + $(kill -l "$1")))
}

jobauto_on_exit() {
    local rc=$?
    trap '' "${jobauto_signals[@]}"  # nothing may interrupt writing the markers
    trap - EXIT
    if [ "$rc" -ne 0 ]; then
        jobauto_put_marker "qsub.failed.$jobauto_id" "$rc"
    fi
    jobauto_put_marker "qsub.finished.$jobauto_id" "$rc"
    echo "jobauto: job $jobauto_id ended with exit code $rc at $(jobauto_now)" >&2
    exit "$rc"
}

jobauto_run() {  # run "$@" in the background: bash handles a trapped signal during `wait` at once
    "$@" &
    jobauto_work_pid=$!
    wait "$jobauto_work_pid"
}

rm -f "qsub.failed.$jobauto_id" "qsub.finished.$jobauto_id"  # left by an earlier attempt
trap jobauto_on_exit EXIT
for jobauto_sig in "${jobauto_signals[@]}"; do
    # shellcheck disable=SC2064  # expand the signal name now, on purpose
    trap "jobauto_on_signal $jobauto_sig" "$jobauto_sig"
done
echo "jobauto: job $jobauto_id started on ${HOSTNAME:-?} in $jobauto_dir at $(jobauto_now)" >&2
# <<< jobauto markers <<<
"""


class PrepareError(Exception):
    """Bad input: the message names the file and line."""


class Structure:
    """One POSCAR of POSCARALL: its material name, its lines, where it started."""

    def __init__(self, material, lines, line_number, natoms):
        self.material = material
        self.lines = lines
        self.line_number = line_number
        self.natoms = natoms


def read_poscarall(path):
    """Split POSCARALL into structures, checking each POSCAR's shape (VASP 5 format)."""
    with open(path) as handle:
        lines = handle.read().splitlines()
    structures = []
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        structure, i = parse_structure(path, lines, i)
        check_name(path, structure, structures)
        structures.append(structure)
    if not structures:
        raise PrepareError(f"{path}: no structures found")
    return structures


def parse_structure(path, lines, start):
    """Read the POSCAR starting at lines[start]; return it and the index after it."""

    def field(offset, what):
        if start + offset >= len(lines) or not lines[start + offset].split():
            raise PrepareError(f"{path} line {start + offset + 1}: expected {what} of the "
                               f"structure that starts on line {start + 1}")
        return lines[start + offset].split()

    def numbers(offset, what, kind, count=None):
        words = field(offset, what)[:count]
        try:
            return [kind(x) for x in words]
        except ValueError:
            raise PrepareError(f"{path} line {start + offset + 1}: expected {what}, found"
                               f" {' '.join(words)!r}") from None

    numbers(1, "the scale factor", float, 1)
    for k in (2, 3, 4):
        numbers(k, "a lattice vector (three numbers)", float, 3)
    species = field(5, "the element symbols")
    if not all(s.isalpha() for s in species):
        raise PrepareError(f"{path} line {start + 6}: expected the element symbols (VASP 5"
                           f" format), found {' '.join(species)!r}; VASP 4 files lack this line")
    counts = numbers(6, "the atom counts", int)
    if len(species) != len(counts):
        raise PrepareError(f"{path} line {start + 7}: {len(counts)} atom counts for"
                           f" {len(species)} element symbols")
    mode = 7
    if field(mode, "Selective dynamics or Direct/Cartesian")[0][0] in "sS":
        mode += 1
    if field(mode, "Direct or Cartesian")[0][0] not in "dDcCkK":
        raise PrepareError(f"{path} line {start + mode + 1}: expected Direct or Cartesian")
    natoms = sum(counts)
    for k in range(mode + 1, mode + 1 + natoms):
        field(k, f"one of the {natoms} atom positions")
    end = start + mode + 1 + natoms
    material = lines[start].split()[0]
    return Structure(material, lines[start:end], start + 1, natoms), end


def check_name(path, structure, earlier):
    """The material name becomes a directory: safe characters, not reserved, unique."""
    material, line = structure.material, structure.line_number
    if not NAME_RE.match(material):
        raise PrepareError(f"{path} line {line}: material name {material!r} must be letters,"
                           " digits and _ . + - (it becomes a directory name)")
    if material == SUMMARY:
        raise PrepareError(f"{path} line {line}: {SUMMARY!r} is reserved for the summary job;"
                           " rename the material")
    for other in earlier:
        if other.material == material:
            raise PrepareError(f"{path} line {line}: material {material!r} is already the name"
                               f" of the structure on line {other.line_number}; names must be"
                               " unique")


def script(title, scheduler, directives, body):
    """A complete job script: directives, the marker logic, and the work."""
    prefix, fixed = HEADERS[scheduler]
    lines = ["#!/bin/bash", f"# {title}",
             "# Written by examples/ecalj/prepare.py; jobmon fills in the placeholders when the",
             "# run starts (the job's id, --binpath, --maxcore)."]
    lines += [prefix + d for d in fixed + directives]
    text = "\n".join(lines) + "\n"
    if scheduler == "pbs":
        text += PBS_CD
    return (text + "\n" + MARKERS + "\nwork() {\n    set -eo pipefail\n" + body
            + "}\n\njobauto_run work  # keep this the last line: its exit code is the job's\n")


def dependency(title, needs, priority=None, estimate_h=None):
    """A qsub.dependency.ID: an optional #jobauto directive, a comment, one path per line."""
    lines = []
    if priority is not None:
        lines.append(f"#jobauto priority={priority} estimate={estimate_h:.2f}")
    lines.append(f"# {title}")
    lines += needs
    return "\n".join(lines) + "\n"


def material_jobs(mat, natoms, iterations):
    """(title, body, estimate in hours) of each step of one material, in order."""
    jobs = [("LDA (lmfa, lmf)",
             f"""    # A clean restart: remove what an earlier attempt left behind.
    rm -f atm.{mat} rst.{mat} sigm.{mat} QPU llmfa llmf
    # real ecalj: vasp2ctrl POSCAR; ctrlgenM1.py {mat}; lmfa {mat} > llmfa
    "__binpath__/lmfa" {mat} > llmfa
    # real ecalj: mpirun -np __maxcore__ lmf-MPIK {mat} > llmf
    "__binpath__/lmf" --np __maxcore__ {mat} > llmf
    grep 'gap (LDA)' llmf
""", 0.02 * natoms ** 2)]
    for k in range(1, iterations + 1):
        jobs.append((f"QSGW iteration {k} of {iterations}",
                     f"""    # real ecalj: gwsc 1 -np __maxcore__ {mat}   (one more QSGW iteration)
    "__binpath__/qsgw" --np __maxcore__ --iter {k} {mat} > lqsgw.{k}
    tail -n 1 QPU
""", 0.25 * natoms ** 2))
    no_sigm = " --no-sigm" if iterations == 0 else ""
    jobs.append(("band plot",
                 f"""    # real ecalj: job_band {mat} -np __maxcore__
    "__binpath__/bandplot"{no_sigm} {mat} > lband
""", 0.05 * natoms))
    return jobs


def write_tree(root, structures, args):
    """Write every material's directory and the summary job under root."""
    last = {}
    for st in structures:
        directory = os.path.join(root, st.material)
        os.makedirs(directory)
        if st.material != args.broken:
            with open(os.path.join(directory, "POSCAR"), "w") as handle:
                handle.write("\n".join(st.lines) + "\n")
        jobs = material_jobs(st.material, st.natoms, args.iterations)
        for k, (what, body, estimate_h) in enumerate(jobs):
            title = f"{st.material} step {k} of 0..{len(jobs) - 1}: {what}"
            needs = [f"qsub.finished.{k - 1}"] if k else []
            write_job(directory, str(k), script(title, args.scheduler, args.directive, body),
                      dependency(title, needs, priority=st.natoms, estimate_h=estimate_h))
        last[st.material] = len(jobs) - 1
    directory = os.path.join(root, SUMMARY)
    os.makedirs(directory)
    dirs = " ".join(f"../{st.material}" for st in structures)
    title = "summary: the band gap of every material, in summary.txt"
    body = f'    "__binpath__/gapsummary" -o summary.txt {dirs}\n'
    needs = [f"../{mat}/qsub.finished.{k}" for mat, k in last.items()]
    write_job(directory, "0", script(title, args.scheduler, args.directive, body),
              dependency(title, needs))
    return sum(last.values()) + len(last) + 1


def write_job(directory, job_id, script_text, dependency_text):
    """Write qsub.ID (executable: the local scheduler runs ./qsub.ID) and qsub.dependency.ID."""
    path = os.path.join(directory, f"qsub.{job_id}")
    with open(path, "w") as handle:
        handle.write(script_text)
    os.chmod(path, 0o755)
    with open(os.path.join(directory, f"qsub.dependency.{job_id}"), "w") as handle:
        handle.write(dependency_text)


def prepare(args):
    """Check everything, build the tree next to LDIR/init, then move it into place."""
    if args.iterations < 0:
        raise PrepareError("--iterations must be 0 or more")
    for text in args.directive:
        if "\n" in text or not text.strip():
            raise PrepareError(f"--directive {text!r} must be one non-empty line")
    if args.directive and args.scheduler == "local":
        raise PrepareError("--directive has no effect with --scheduler=local")
    try:
        structures = read_poscarall(args.poscarall)
    except OSError as exc:
        raise PrepareError(f"cannot read POSCARALL: {exc}") from None
    if args.broken and args.broken not in [st.material for st in structures]:
        raise PrepareError(f"--break {args.broken}: no such material in {args.poscarall}")
    init = os.path.join(args.ldir, "init")
    if os.path.exists(init) and not args.force:
        raise PrepareError(f"{init} exists; pass --force to replace it (runs beside it stay)")
    os.makedirs(args.ldir, exist_ok=True)
    staging = os.path.join(args.ldir, f".init.new-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        njobs = write_tree(staging, structures, args)
        if os.path.exists(init):
            old = os.path.join(args.ldir, f".init.old-{os.getpid()}")
            os.rename(init, old)
            shutil.rmtree(old)
        os.rename(staging, init)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    names = " ".join(st.material for st in structures)
    print(f"prepare.py: {init}: {njobs} jobs for {len(structures)} materials ({names})"
          f" + summary, {args.iterations} QSGW iterations each")
    if args.broken:
        print(f"prepare.py: {args.broken} has no POSCAR (--break): its LDA job will fail")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="prepare.py", description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("poscarall", metavar="POSCARALL", help="concatenated VASP 5 POSCARs")
    parser.add_argument("ldir", metavar="LDIR", help="jobmon's --ldir; init/ is written in it")
    parser.add_argument("--iterations", type=int, default=3, metavar="N",
                        help="QSGW iterations per material (default 3)")
    parser.add_argument("--scheduler", choices=sorted(HEADERS), default="sge",
                        help="directive style of the scripts (default sge, which also runs"
                             " under --scheduler=local)")
    parser.add_argument("--directive", action="append", default=[], metavar="TEXT",
                        help='one more directive line, e.g. --directive="-l h_rt=1:00:00";'
                             " repeatable")
    parser.add_argument("--break", dest="broken", metavar="MATERIAL",
                        help="leave out MATERIAL's POSCAR so its LDA job fails (to see how"
                             " jobmon reports a failure)")
    parser.add_argument("--force", action="store_true", help="replace an existing LDIR/init")
    args = parser.parse_args(argv)
    try:
        return prepare(args)
    except PrepareError as exc:
        print(f"prepare.py: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
