"""Fault injection on the real SSH connection: cut it at a chosen step of a submission batch.

CutTransport is the real SSHTransport talking to the real sshd; only its two seams are used.
`arm(step)` makes the next batch that submits jobs fail at that step:

* step -1: the batch script reaches the cluster incomplete (the connection broke while sending);
* step k >= 0: the connection drops after the answers of the first k commands arrived (command 0
  journals the batch start, then one command per submission, then the batch end). The cluster
  side goes on regardless (the batch ignores hang-ups); only the answers are lost.
"""

from __future__ import annotations

from jobauto.cluster.transport.base import HEADER
from jobauto.cluster.transport.ssh import SSHTransport
from jobauto.core.errors import TransportError


def frames_end(out: bytes | bytearray, k: int) -> int | None:
    """Byte offset just past the k-th complete result frame, or None if fewer arrived."""
    pos = 0
    for _ in range(k):
        m = HEADER.match(out, pos)
        if m is None:
            return None
        _, _, n_out, n_err = (int(g) for g in m.groups())
        end = m.end() + int(n_out) + int(n_err)
        if end > len(out):
            return None
        pos = end
    return pos


class CutTransport(SSHTransport):
    def __init__(self, *args, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kw)
        self.plan: int | None = None
        self.active: int | None = None
        self.cuts: list[int] = []

    def arm(self, step: int) -> None:
        self.plan = step

    def _outgoing(self, data: bytes) -> bytes:
        if self.plan is None or b"jobauto-submit" not in data:
            return data
        step, self.plan = self.plan, None
        self.cuts.append(step)
        if step < 0:
            return data[: len(data) // 2]  # the rest never arrives: the guard refuses to run it
        self.active = step
        return data

    def _incoming(self, out: bytearray) -> None:
        if self.active is None:
            return
        end = frames_end(out, self.active)
        if end is None:
            return
        self.active = None
        del out[end:]  # whatever came after the cut point is lost with the connection
        self._clients[-1].get_transport().sock.close()  # type: ignore[union-attr]
        raise TransportError("fault injection: connection cut")
