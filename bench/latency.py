"""One cycle-sized round trip (a batch of 10 commands) and a 1 MB push, through paramiko and
through an OpenSSH master, with the test cluster's sshd 0, 50 and 100 ms away (round trip)
behind tests/helpers.py's DelayRelay. Needs the test cluster (tests/cluster/up.sh).

    python bench/latency.py [--trips 20]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers import HOST, SSH_PORT, DelayRelay, Master, client_config, control_dir  # noqa: E402

from jobauto.cluster.transport.openssh import OpenSSHTransport  # noqa: E402
from jobauto.cluster.transport.ssh import SSHTransport  # noqa: E402
from jobauto.core.model import Command  # noqa: E402


def measure(transport: SSHTransport | OpenSSHTransport, trips: int, src: Path) -> tuple[float, float]:
    batch = [Command.of(["true"])] * 10
    times = []
    for _ in range(trips):
        t0 = time.perf_counter()
        transport.run_many(batch)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    transport.push(src, "jobauto-bench/latency")
    return statistics.median(times), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trips", type=int, default=20)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ja-bench-"))
    src = work / "src"
    src.mkdir()
    (src / "data").write_bytes(b"x" * (1 << 20))
    print(f"{'rtt':>6} {'transport':>9} {'batch of 10 (median)':>21} {'1 MB push':>10}")
    try:
        for rtt_ms in (0, 50, 100):
            relay = DelayRelay(("127.0.0.1", SSH_PORT), rtt_ms / 2000)
            sockets = control_dir()
            cfg = client_config(work / f"c{rtt_ms}", relay.port, f"ControlPath {sockets}/%C")
            master = Master(cfg)
            master.start()
            try:
                for name, t in (("paramiko", SSHTransport(HOST, config_path=cfg)),
                                ("openssh", OpenSSHTransport(HOST, config_path=cfg))):
                    t.connect()
                    trip, push = measure(t, args.trips, src)
                    t.close()
                    print(f"{rtt_ms:>4}ms {name:>9} {trip * 1000:>18.0f} ms {push * 1000:>7.0f} ms")
            finally:
                master.stop()
                relay.close()
                shutil.rmtree(sockets, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
