"""Peak memory of taking in a scan whose tar holds one huge marker (a job that filled its
qsub.failed.ID with 300 MB), before and after the scan's files were read with bounds.

Each variant runs in a process of its own: it builds the scan's answer in memory (what the
transport hands over as the command's stdout), then parses it and writes its files into a run
directory. Printed: the RSS once the answer is in memory, the peak RSS, and the difference (what
taking in the scan cost on top of the answer itself).

    python bench/marker_memory.py [--mb 300]

"before" is the code as it was (tarfile "r:", every member read whole, written with
Path.write_bytes); "after" is jobauto.run.mirror.parse_tar and core.files.write_from_cluster on
the same 300 MB answer; "sent" runs the real scan op on this machine (LocalTransport) over a
directory holding that marker: the cluster now sends only the head parse_tar reads, so the answer
itself is small.
"""

from __future__ import annotations

import argparse
import io
import os
import posixpath
import resource
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Filler(io.RawIOBase):
    """`size` bytes of "x", made as they are read."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray) -> int:  # type: ignore[override]
        n = min(len(buf), self.left)
        buf[:n] = b"x" * n
        self.left -= n
        return n


def answer(mb: int, tmp: Path) -> bytes:
    """The scan's tar, a failed marker of `mb` MB and a finished marker, as one bytes object
    (written to a file first, so that making it never holds two copies)."""
    path = tmp / "scan.tar"
    with tarfile.open(path, mode="w:") as tar:
        info = tarfile.TarInfo("./a/qsub.failed.0")
        info.size = mb << 20
        tar.addfile(info, io.BufferedReader(Filler(info.size)))
        tar.addfile(tarfile.TarInfo("./a/qsub.finished.0"), io.BytesIO(b""))
    data = path.read_bytes()
    path.unlink()
    return data


def before(data: bytes, run: Path) -> None:
    out: dict[str, tuple[float, bytes]] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for m in tar:
            f = tar.extractfile(m)
            path = posixpath.normpath(m.name)
            if f is not None:
                out[path] = (float(m.mtime), f.read())
    for path, (_, content) in out.items():
        target = run / path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.jobauto-tmp")
        tmp.write_bytes(content)
        os.replace(tmp, target)


def after(data: bytes, run: Path) -> None:
    from jobauto.core.files import write_from_cluster
    from jobauto.run.mirror import parse_tar
    scan = parse_tar(data)
    for path, (mtime, content) in scan.files.items():
        write_from_cluster(run, path, content, mtime=mtime)


def sent(mb: int, tmp: Path) -> bytes:
    """The scan's answer as the scan op sends it now, for a (sparse) marker of `mb` MB."""
    from jobauto.cluster.transport.local import LocalTransport
    from jobauto.run.mirror import scan_command
    (tmp / "remote" / "a").mkdir(parents=True)
    with open(tmp / "remote" / "a" / "qsub.failed.0", "wb") as f:
        f.truncate(mb << 20)
    (tmp / "remote" / "a" / "qsub.finished.0").touch()
    return LocalTransport().run_many([scan_command(str(tmp / "remote"), 1, None)])[0].stdout


def child(variant: str, mb: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = sent(mb, Path(tmp)) if variant == "sent" else answer(mb, Path(tmp))
        base = rss_mb()
        (Path(tmp) / "run").mkdir()
        (before if variant == "before" else after)(data, Path(tmp) / "run")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{variant:<7} answer {len(data) >> 10:7d} KiB, in memory {base:7.0f} MB   peak {peak:7.0f} MB   "
          f"taking it in +{peak - base:6.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=300)
    ap.add_argument("--child", choices=["before", "after", "sent"])
    a = ap.parse_args()
    if a.child:
        child(a.child, a.mb)
        return
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for variant in ("before", "after", "sent"):
        subprocess.run([sys.executable, __file__, "--child", variant, "--mb", str(a.mb)],
                       check=True, env=env)


if __name__ == "__main__":
    main()
