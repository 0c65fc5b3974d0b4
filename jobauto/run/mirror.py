"""Operations on a run's mirror on the cluster, each cycle's worth in one round trip.

Every operation is an argv list ``sh -c SCRIPT jobauto-OP ARGS...``: user-controlled names only
ever travel as arguments, never inside the script text, so they cannot inject anything.

What the scan's tar stream is read for, and its bounds, are in run/scantar.py (parse_tar).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from jobauto.cluster.host import Host
from jobauto.cluster.schedulers.common import UNSENT, UNSENT_RC
from jobauto.cluster.transport.base import BatchCut
from jobauto.core.errors import SchedulerError, TransportError
from jobauto.core.files import SCAN_NOTES, TMP_TAG
from jobauto.core.model import Command, CommandResult, Ending, QueueSnapshot, SubmitResult
from jobauto.run.arrays import ARRAYS_DIR
from jobauto.run.scantar import FILE_MAX, MARKER_MAX, parse_tar
from jobauto.run.wrapper import WRAPPER_GLOB, wrapper_name

REMOTE_STATE = ".jobauto"
# A cycle never waits for ever on a hung qstat/qsub: past these the answer counts as lost (the
# cluster side finishes anyway and journals; the next cycle settles it).
OBSERVE_TIMEOUT_S = 600.0
SUBMIT_TIMEOUT_S = 120.0      # plus SUBMIT_PER_JOB_S per submission in the batch
SUBMIT_PER_JOB_S = 10.0

# The per-cycle look names the directory of each running job on its command line: past this
# many bytes the names go to a further look in the same batch (Linux takes 2 MiB of arguments,
# some systems 256 KiB; every command of a batch is also a line of its script).
LOOK_ARGV_MAX = 64 << 10

# What a scan takes (the names parse_tar keeps), and how it sends them: the found files
# ("SIZE ./PATH" lines from find) go through a shell loop that leaves out or cuts short what
# the monitor would not read, then into one tar stream.
_NAMES = "\\( -name 'qsub.finished.*' -o -name 'qsub.failed.*' -o -name 'qsub.dependency.*' \\)"
_SCAN_HEAD = (
    'd=$1; gen=$2; base=$3; hd=$4; max=$5; shift 5; cd -- "$d" || exit 3; '
    'h=.jobauto/heads/$gen; l=$h/' + SCAN_NOTES + '; [ ! -d "$h" ] || rm -rf -- "$h"; '
    'note() { mkdir -p -- "$h/.jobauto" && printf "%s\\t%s\\t%s\\n" "$1" "$2" "$3" >> "$l"; }; '
    'c=; if [ -n "$base" ] && [ -e ".jobauto/scan.$base" ]; then c=.jobauto/scan.$base; fi; { '
)
_SCAN_TAIL = (
    " -printf '%s %p\\n' 2>/dev/null | "
    'while IFS= read -r e; do n=${e%% *}; f=${e#* }; case $f in '
    '*/qsub.dependency.*) if [ "$n" -gt "$max" ]; then note S "$n" "$f"; continue; fi; '
    'printf "%s\\n" "$f"; s="${f%/*}/qsub.${f##*/qsub.dependency.}"; [ -f "$s" ] || continue; '
    'n=$(wc -c < "$s") || continue; if [ "$n" -gt "$max" ]; then note S "$n" "$s"; '
    'else printf "%s\\n" "$s"; fi;; '
    '*) if [ "$n" -le "$hd" ]; then printf "%s\\n" "$f"; continue; fi; t=$h/${f#./}; '
    'mkdir -p -- "${t%/*}" && head -c "$hd" -- "$f" > "$t" && touch -r "$f" -- "$t" && '
    'printf "./%s\\n" "$t" && note H "$n" "$f";; esac; done; '
    '[ -s "$l" ] && printf "./%s\\n" "$l"; } | '
    "tar --ignore-failed-read --no-recursion --transform 's|^\\./\\.jobauto/heads/[0-9]*/|./|' "
    "-b 1 -T - -cf - 2>/dev/null; "
    '[ ! -d "$h" ] || rm -rf -- "$h"; exit 0'
)

OPS = {
    # Markers, dependency files (and the script beside each dependency file) of the whole tree
    # whose ctime is newer than the stamp of scan BASE (the sweep), as a tar stream. What the
    # monitor would not read is not sent (LIMITS): a marker over HEAD bytes goes as its first
    # HEAD bytes (a copy under .jobauto/heads/GEN/, made only then, renamed back by
    # --transform), a dependency file or script over MAX bytes not at all; both are listed in a
    # last member NOTES ("H|S <tab> size <tab> name" lines), so that the monitor still says so.
    "scan": _SCAN_HEAD + 'find . -path ./.jobauto -prune -o -type f ' + _NAMES + ' ${c:+-cnewer "$c"}' + _SCAN_TAIL,
    # The same, in just the directories DIR... (each "./"-prefixed, so that none reads as an
    # option), not below them: the per-cycle look at the directories of the jobs that can
    # change. A directory whose ctime is not newer than the stamp had no entry made, removed or
    # renamed since: it is not read (one stat).
    "look": _SCAN_HEAD + 'find "$@" -maxdepth 1 -path ./.jobauto -prune -o -type d \\( ${c:+-cnewer "$c" -o -prune -o} -true \\) '
            '-o -type f ' + _NAMES + ' ${c:+-cnewer "$c"}' + _SCAN_TAIL,
    # The stamp of scan GEN, touched before any scan of the cycle so that nothing is missed;
    # stamps (and cut copies a killed scan left) older than KEEP go, but for that of scan SWEEP
    # (the next sweep starts from it): a handful of files, whatever the cadence.
    "stamp": (
        'd=$1; gen=$2; keep=$3; sweep=$4; cd -- "$d" || exit 3; mkdir -p .jobauto && touch ".jobauto/scan.$gen" || exit 4; '
        '[ -n "$keep" ] || exit 0; for s in .jobauto/scan.* .jobauto/heads/*; do n=${s##*[./]}; '
        'case $n in *[!0-9]*|"") continue;; esac; [ "$n" -lt "$keep" ] && [ "$n" != "$sweep" ] && rm -rf -- "$s"; '
        'done; exit 0'
    ),
    "exists": 'd=$1; shift; cd -- "$d" || exit 3; for p do [ -e "$p" ] && printf "%s\\0" "$p"; done; exit 0',
    # Run one submission and journal its outcome on the cluster before reporting it, so that an
    # answer lost with the connection can be recovered. With a wrapper W (run/wrapper.py), its
    # TEXT is first written beside script S (which must be there, as qsub would insist). Each
    # token of P is a submission earlier in this batch (among the journal's last N lines): its
    # id, read from its journal line as the adapters read one (schedulers/common.py BATCH_ID), takes the place of
    # @TOKEN@ in the arguments (a job queued ahead after it, run/ahead.py); without one nothing
    # is submitted, and the answer says so (UNSENT).
    "submit": (
        'j=$1; tok=$2; w=$3; s=$4; t=$5; p=$6; n=$7; shift 7; case $j in /*) ;; *) j=$HOME/$j;; esac; u=; '
        'for q in $p; do i=$(tail -n "$n" -- "$j" 2>/dev/null | sed -n -E "s/^S\t$q\t0\t *(Your job )?([0-9]+)([.;][^ ]*| \\(.*\\) has been submitted)? *\\$/\\2/p" | tail -n 1); '
        '[ -n "$i" ] || { u=$q; break; }; '
        'for a do case $a in *"@$q@"*) a=${a%%"@$q@"*}$i${a#*"@$q@"};; esac; set -- "$@" "$a"; shift; done; done; '
        'if [ -n "$u" ]; then o="' + "UNSENT_TEXT" + ' $u"; rc=' + "UNSENT_RC" + '; '
        'elif [ -z "$w" ]; then o=$("$@"); rc=$?; '
        'elif [ ! -f "$s" ]; then o="jobauto: no such job script: $s"; rc=1; '
        'elif printf "%s" "$t" > "$w' + TMP_TAG + '$$" && mv -f -- "$w' + TMP_TAG + '$$" "$w"; then o=$("$@"); rc=$?; '
        'else rm -f -- "$w' + TMP_TAG + '$$"; o="jobauto: cannot write the wrapper $w here; will try again"; rc=1; fi; '
        "printf 'S\\t%s\\t%s\\t%s\\n' \"$tok\" \"$rc\" \"$(printf '%s' \"$o\" | tr '\\t\\n' '  ' | cut -c1-300)\" >> \"$j\"; "
        "printf '%s\\n' \"$o\"; exit $rc"
    ).replace("UNSENT_TEXT", UNSENT).replace("UNSENT_RC", str(UNSENT_RC)),
    # An array (run/arrays.py): its task table and wrapper are written under .jobauto/arrays/,
    # then it is submitted from there, journaled like one submission under its name.
    "array": (
        'j=$1; tok=$2; tab=$3; w=$4; shift 4; case $j in /*) ;; *) j=$HOME/$j;; esac; '
        'if mkdir -p -- ' + ARRAYS_DIR + ' && cd -- ' + ARRAYS_DIR + ' && '
        'printf "%s" "$tab" > "$tok.tasks' + TMP_TAG + '$$" && mv -f -- "$tok.tasks' + TMP_TAG + '$$" "$tok.tasks" && '
        'printf "%s" "$w" > "$tok.run' + TMP_TAG + '$$" && mv -f -- "$tok.run' + TMP_TAG + '$$" "$tok.run"; '
        'then o=$("$@"); rc=$?; else o="jobauto: cannot write the array $tok here; will try again"; rc=1; fi; '
        "printf 'S\\t%s\\t%s\\t%s\\n' \"$tok\" \"$rc\" \"$(printf '%s' \"$o\" | tr '\\t\\n' '  ' | cut -c1-300)\" >> \"$j\"; "
        "printf '%s\\n' \"$o\"; exit $rc"
    ),
    "mark": "printf 'B\\t%s\\t%s\\n' \"$2\" \"$3\" >> \"$1\"",
    "journal": 'j=$1; shift; [ -f "$j" ] || exit 0; for p do set -- "$@" -e "$p"; shift; done; grep -F "$@" -- "$j"; exit 0',
    "rm": 'd=$1; shift; cd -- "$d" || exit 3; rm -f -- "$@"',
    # Every regular file of the run directory as "size<TAB>mtime<TAB>name<NUL>" (run/transfer.py
    # reads it, bounded); exit 3 when the directory is not there.
    "list": 'd=$1; cd -- "$d" || exit 3; find . -type f -printf "%s\\t%T@\\t%P\\0"; exit 0',
    # Remove the run directory (its path ends in the run's name: run/transfer.py checks it).
    "rmtree": 'd=$1; [ -d "$d" ] || exit 0; rm -rf -- "$d"',
}


# What a push leaves out (Remote.push; `jobauto plan` sums the rest): the run's own state, the
# quelist, and temporary files a kill -9 left behind in DATE/.
PUSH_EXCLUDE = ["/" + REMOTE_STATE + "/", "/quelist", f"*{TMP_TAG}*", WRAPPER_GLOB]


@dataclass(frozen=True)
class TreeShape:
    """What the scan's cost depends on: the run tree's directories, the files whose names the
    scan takes (markers, dependency files), the directories of jobs submitted and not ended
    (at most --maxqsub), and the plain files the run waits for."""

    dirs: int
    scanned_files: int
    active_dirs: int = 0
    watched: int = 0


def scan_cost(shape: TreeShape) -> int:
    """Remote metadata operations (stat, getdents, open) of one steady cycle's observation, as
    `jobauto plan` forecasts them; keep it true when the scan changes. Today the scan's find
    walks the whole tree whatever changed: per directory an open, two getdents and a stat; per
    file its name test takes, a stat (-cnewer); per watched file a stat (`exists`)."""
    return 4 * shape.dirs + shape.scanned_files + shape.watched


def op(name: str, *args: str, cwd: str | None = None) -> Command:
    return Command.of(["sh", "-c", OPS[name], "jobauto-" + name, *args], cwd)


def scan_command(rundir: str, gen: int, base: int | None) -> Command:
    """The sweep of a run directory on the cluster, bounded by what parse_tar reads."""
    return op("scan", rundir, str(gen), "" if base is None else str(base), str(MARKER_MAX), str(FILE_MAX))


def look_commands(rundir: str, gen: int, base: int | None, dirs: list[str]) -> list[Command]:
    """The per-cycle look in DIRS (below the run directory, "" for itself): as many commands as
    keep each one's arguments under LOOK_ARGV_MAX bytes (the batch stays one round trip)."""
    fixed = [rundir, str(gen), "" if base is None else str(base), str(MARKER_MAX), str(FILE_MAX)]
    cmds: list[Command] = []
    chunk: list[str] = []
    size = 0
    for d in dirs:
        arg = "./" + d if d else "."
        if chunk and size + len(arg) + 1 > LOOK_ARGV_MAX:
            cmds.append(op("look", *fixed, *chunk))
            chunk, size = [], 0
        chunk.append(arg)
        size += len(arg) + 1
    if chunk:
        cmds.append(op("look", *fixed, *chunk))
    return cmds


def stamp_command(rundir: str, gen: int, keep: int | None, sweep: int | None = None) -> Command:
    """Touch the stamp of scan GEN; remove those older than KEEP but SWEEP's (None: none go)."""
    return op("stamp", rundir, str(gen), "" if keep is None else str(keep), "" if sweep is None else str(sweep))


@dataclass
class Observation:
    """What one cycle learned from the cluster."""

    files: dict[str, tuple[float, bytes]] = field(default_factory=dict)
    existing: set[str] = field(default_factory=set)
    queue: QueueSnapshot | None = None
    journal: list[list[str]] = field(default_factory=list)
    endings: dict[str, Ending] | None = None  # accounting records; None: not asked or no answer
    acct_error: str = ""
    warnings: list[str] = field(default_factory=list)  # what the scan brought and was not taken


# what an adapter's parser raises on scheduler output its format did not foresee (a field
# missing, a number out of range): the answer counts as unknown, as an unanswered query does
PARSE_ERRORS = (ValueError, IndexError, KeyError, OverflowError, UnicodeError)


class Remote:
    """A run directory on the cluster, driven through one host (transport plus scheduler)."""

    def __init__(self, host: Host, rundir: str) -> None:
        self.host = host
        self.transport = host.transport
        self.adapter = host.adapter
        self.rundir = rundir
        self.journal_path = posixpath.join(rundir, REMOTE_STATE, "submit.log")

    def observe(self, gen: int, base: int | None, watched: list[str], want_queue: bool,
                journal_keys: list[str], acct_ids: list[str] | None = None, *,
                look: list[str] | None = None, sweep_base: int | None = None,
                sweep: bool = True) -> Observation:
        """Scan for new markers, test watched paths, list the queue, read accounting: one round
        trip. The scans run first, so a job the accounting reports ended had its markers seen.

        LOOK: the directories (below the run directory) where something can change: each cycle's
        look reads just those, for what changed since the stamp of scan BASE; with SWEEP, the
        whole tree is scanned too, for what changed since the stamp of scan SWEEP_BASE (given
        even when not sweeping: that stamp is kept for the next sweep). LOOK None: the sweep
        alone, from BASE."""
        if look is None:
            scans, sweep_base = [scan_command(self.rundir, gen, base)], base
        else:
            scans = look_commands(self.rundir, gen, base, look)
            if sweep:
                scans.append(scan_command(self.rundir, gen, sweep_base))
        # the stamps both scans start from stay (None: from the beginning, nothing goes)
        keep = None if base is None or sweep_base is None else base
        cmds = [stamp_command(self.rundir, gen, keep, sweep_base), *scans]
        if watched:
            cmds.append(op("exists", self.rundir, *watched))
        if want_queue:
            cmds.append(self.host.queue_command())
        if journal_keys:
            cmds.append(op("journal", self.journal_path, *journal_keys))
        acct = self.host.acct_command(acct_ids or [])
        if acct is not None:
            cmds.append(acct)
        results = self.transport.run_many(cmds, timeout=OBSERVE_TIMEOUT_S)
        obs = Observation()
        for res in results[:1 + len(scans)]:
            if res.rc != 0:
                raise TransportError(f"cannot scan {self.rundir} on {self.transport.host}: "
                                     f"{res.stderr.strip() or 'exit ' + str(res.rc)}", transient=False)
        for res in results[1:1 + len(scans)]:
            self.transport.usage.bytes_scanned += len(res.stdout)
            taken = parse_tar(res.stdout)
            obs.files.update(taken.files)
            obs.warnings += taken.warnings
        i = 1 + len(scans)
        if watched:
            obs.existing = {p.decode("utf-8", "surrogateescape") for p in results[i].stdout.split(b"\0") if p}
            i += 1
        if want_queue:
            try:
                obs.queue = self.adapter.parse_queue(results[i])
            except PARSE_ERRORS as e:  # an answer no parser expected proves nothing
                obs.queue = QueueSnapshot(False, error=f"unreadable queue listing ({e!r:.200})")
            i += 1
        if journal_keys:
            obs.journal = [ln.split("\t") for ln in results[i].text.splitlines()]
            i += 1
        if acct is not None:
            try:
                obs.endings = self.adapter.parse_acct(results[i])
            except SchedulerError as e:
                obs.acct_error = e.message
            except PARSE_ERRORS as e:
                obs.acct_error = f"unreadable accounting output ({e!r:.200})"
        return obs

    def cancel(self, ids: list[str]) -> CommandResult:
        """Remove jobs from the queue; the output keeps what the scheduler said about them."""
        return self.host.cancel(ids)

    def stamp(self, gen: int) -> None:
        """Mark the tree as seen up to now (after a push), so the next scan starts here."""
        res = self.transport.run_many([Command.of(["mkdir", "-p", "--", posixpath.join(self.rundir, REMOTE_STATE)]),
                                       Command.of(["touch", "--", posixpath.join(self.rundir, REMOTE_STATE, f"scan.{gen}")])])
        if any(r.rc for r in res):
            raise TransportError(f"cannot write to {self.rundir} on {self.transport.host}: "
                                 + " ".join(r.stderr.strip() for r in res), transient=False)

    def submit(self, batch: str, entries: list[tuple[str, str, list[str], str | None]],
               arrays: list[tuple[str, str, str, list[str], int]] | None = None,
               after: dict[str, list[str]] | None = None) -> list[SubmitResult | None]:
        """Submit (token, job name, extra qsub args, wrapper text) in one round trip; None
        where the answer was lost. A job with a wrapper text is submitted through that wrapper,
        written beside its script by the same command (run/wrapper.py); None: the script.
        AFTER: for a token, the tokens of submissions before it in this batch whose ids take the
        place of batch_id(TOKEN) in its arguments. Each of `arrays` (name, task table, array
        wrapper, extra args, tasks; run/arrays.py) is one more submission in the same round
        trip, its answer after the jobs'."""
        arrays = arrays or []
        after = after or {}
        back = str(len(entries) + len(arrays) + 2)   # the journal's lines this batch writes
        cmds = [op("mark", self.journal_path, batch, "start")]
        for token, name, extra, text in entries:
            d, script = posixpath.split(name)
            wrap = wrapper_name(script) if text is not None else ""
            argv = self.host.submit_argv(script, token, extra, wrap or None)
            cmds.append(op("submit", self.journal_path, token, wrap, script if wrap else "",
                           text or "", " ".join(after.get(token, [])), back, *argv,
                           cwd=posixpath.join(self.rundir, d) if d else self.rundir))
        for name, table, text, extra, n in arrays:
            argv = self.host.sched(self.adapter.array_submit_argv(
                name + ".run", name, n, self.host.qsub_args + extra))
            cmds.append(op("array", self.journal_path, name, table, text, *argv, cwd=self.rundir))
        cmds.append(op("mark", self.journal_path, batch, "end"))
        tokens = [e[0] for e in entries] + [a[0] for a in arrays]
        try:
            results = self.transport.run_many(
                cmds, timeout=SUBMIT_TIMEOUT_S + SUBMIT_PER_JOB_S * len(tokens))
        except BatchCut as e:
            results = e.partial
        out: list[SubmitResult | None] = []
        for i, token in enumerate(tokens):
            res = results[i + 1] if i + 1 < len(results) else None
            out.append(None if res is None else self.submit_result(token, res))
        return out

    def submit_result(self, token: str, res: CommandResult) -> SubmitResult:
        """What a submission's answer (or its journal line) says; UNSENT is the op's own."""
        if res.rc == UNSENT_RC and res.text.startswith(UNSENT):
            return SubmitResult(token, None, " ".join(res.text.split())[:300], unsent=True)
        return self.host.submit_result(token, res)

    def remove(self, paths: list[str]) -> None:
        """Delete files of the run on the cluster (missing ones are fine); raise if it failed."""
        if paths:
            res = self.transport.run_many([op("rm", self.rundir, *paths)])[0]
            if res.rc != 0:
                raise TransportError(f"cannot remove markers in {self.rundir} on "
                                     f"{self.transport.host}: {res.stderr.strip() or res.rc}")

    def push_files(self, local: Path, names: list[str]) -> None:
        """Push just these files of the run (one transfer)."""
        self.transport.push_files(local, self.rundir, names)

    def pull_files(self, local: Path, names: list[str]) -> tuple[int, int]:
        """Bring just these files back (one transfer): files moved and their bytes."""
        return self.transport.pull_files(self.rundir, local, names)

    def push(self, local: Path) -> None:
        self.transport.push(local, self.rundir, exclude=PUSH_EXCLUDE)

    def fetch(self, local: Path, include: list[str] | None) -> None:
        self.transport.pull(self.rundir, local, include=include,
                            exclude=["/" + REMOTE_STATE + "/", WRAPPER_GLOB])
