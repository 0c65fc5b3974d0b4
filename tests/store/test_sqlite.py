"""Where a job table may live (jobauto/store/sqlite.py): the mount table read from mountinfo lines,
the mounts whose locks stay on one host, the lock probe, and the one refusal.
"""

from __future__ import annotations

import errno
import fcntl
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobauto.core.errors import StateError
from jobauto.store import sqlite
from jobauto.store.sqlite import Mount, local_locks, mount_of, parse_mountinfo, require_shared_locks

# The first two lines are this machine's /proc/self/mountinfo (the root, and one of the two
# sshfs mounts of tests/store/test_sqlite_cluster.py); the others are written in the kernel's
# format (proc(5)) with the options as nfs(5), Lustre's mount.lustre(8) and mount.cifs(8)
# name them and as /proc shows them: an NFSv4 home with network locks, an NFSv3 mount with
# nolock (shown with local_lock=all too), NFSv4 with local_lock=posix and with local_lock=flock,
# Lustre with localflock and with flock, an SMB share with nobrl whose mount point holds a
# space (\040), and a second mount stacked on /work.
MOUNTINFO = r"""27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
45 27 0:40 / /tmp/h4-mnt/a rw,nosuid,nodev,relatime - fuse.sshfs testhost:/home/jobauto/jobauto-tests/h4fs.K1ZJ rw,user_id=0,group_id=0
36 27 0:32 / /home rw,relatime shared:16 - nfs4 nfs01:/export/home rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=10.1.0.17,local_lock=none,addr=10.1.0.2
37 27 0:33 / /work rw,relatime shared:17 - nfs nfs02:/export/work rw,vers=3,rsize=1048576,wsize=1048576,namlen=255,hard,nolock,proto=tcp,timeo=600,retrans=2,sec=sys,mountaddr=10.1.0.3,mountvers=3,mountport=20048,mountproto=udp,local_lock=all,addr=10.1.0.3
38 27 0:34 / /scratch rw,relatime shared:18 - nfs4 nfs03:/scratch rw,vers=4.1,hard,proto=tcp,sec=sys,local_lock=posix,addr=10.1.0.4
39 27 0:35 / /group rw,relatime shared:19 - nfs4 nfs03:/group rw,vers=4.1,hard,proto=tcp,sec=sys,local_lock=flock,addr=10.1.0.4
40 27 0:36 / /lfs rw,relatime shared:20 - lustre 10.2.0.1@o2ib:/lfs01 rw,localflock,lazystatfs
41 27 0:37 / /gs rw,relatime shared:21 - lustre 10.2.0.1@o2ib:/gs rw,flock,lazystatfs,encrypt
42 27 0:38 / /mnt/my\040share rw,relatime shared:22 - cifs //fs01/share rw,vers=3.1.1,cache=strict,username=alice,uid=1000,soft,nounix,serverino,mapposix,nobrl,rsize=4194304,wsize=4194304,actimeo=1
43 37 0:39 / /work rw,relatime shared:23 - nfs4 nfs04:/work rw,vers=4.2,hard,proto=tcp,sec=sys,local_lock=none,addr=10.1.0.5
this line is not a mount
"""


def by_point() -> dict[str, Mount]:
    return {m.point: m for m in parse_mountinfo(MOUNTINFO)}


def test_mountinfo_lines_give_point_type_source_and_both_option_sets() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert len(mounts) == 10  # the line that is not a mount is skipped
    a = by_point()["/tmp/h4-mnt/a"]
    assert a.fstype == "fuse.sshfs" and a.source.startswith("testhost:/home/jobauto/")
    assert a.options == ("rw", "nosuid", "nodev", "relatime", "user_id=0", "group_id=0")
    assert "/mnt/my share" in by_point()   # \040 is a space


def test_the_mount_of_a_path_is_the_deepest_and_the_last_stacked() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert mount_of("/home/alice/t.db", mounts).point == "/home"  # type: ignore[union-attr]
    assert mount_of("/homework/t.db", mounts).point == "/"  # type: ignore[union-attr]
    assert mount_of("/work/x/t.db", mounts).source == "nfs04:/work"  # type: ignore[union-attr]
    assert mount_of("/mnt/my share/t.db", mounts).fstype == "cifs"  # type: ignore[union-attr]
    assert mount_of("relative", mounts) is None


@pytest.mark.parametrize(("point", "says"), [
    ("/", None),
    ("/tmp/h4-mnt/a", "sshfs passes no locks to the server"),
    ("/home", None),                                   # NFSv4, network locks
    ("/scratch", "local_lock=posix"),
    ("/group", None),                                  # flock local, SQLite's fcntl locks are not
    ("/lfs", "localflock"),
    ("/gs", None),
    ("/mnt/my share", "nobrl"),
])
def test_mounts_whose_locks_stay_on_one_host(point: str, says: str | None) -> None:
    why = local_locks(by_point()[point])
    assert (why is None) if says is None else (says in (why or ""))


def test_nfs_nolock_names_both_spellings() -> None:
    nolock = next(m for m in parse_mountinfo(MOUNTINFO) if m.source == "nfs02:/export/work")
    assert local_locks(nolock) == "mounted with local_lock=all and nolock: locks are kept on this client"


@pytest.fixture
def mountinfo(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The mount table the check reads, as the test sets it (and no cached answers)."""
    text = [""]
    monkeypatch.setattr(sqlite, "read_mountinfo", lambda: text[0])
    sqlite.lock_problem.cache_clear()
    yield text
    sqlite.lock_problem.cache_clear()


def test_a_table_on_a_nolock_mount_is_refused_in_one_line_naming_mount_type_options_and_way_out(
        mountinfo: list[str], tmp_path: Path) -> None:
    mountinfo[0] = (f"37 27 0:33 / {tmp_path} rw,relatime - nfs nfs02:/export/work "
                    "rw,vers=3,hard,nolock,local_lock=all\n")
    db = tmp_path / "t.db"
    with pytest.raises(StateError) as e:
        require_shared_locks(db)
    msg = e.value.describe()
    assert msg.startswith(f"{db}: the job table is on {tmp_path} (nfs, options rw,relatime,vers=3,")
    assert "nolock" in msg and "another directory" in msg and "--unsafe-fs" in msg
    assert "\n" not in msg and e.value.exit_code == 2
    require_shared_locks(db, unsafe_fs=True)  # the user accepts the risk


def test_the_probe_refuses_a_directory_where_locks_fail(
        mountinfo: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NFS without its lock daemon answers every lock with ENOLCK; SQLite then fails with
    "disk I/O error" or "unable to open database file" at the first write."""
    def no_locks(fd: int, cmd: int, *args: object) -> None:
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setattr(fcntl, "lockf", no_locks)
    with pytest.raises(StateError) as e:
        require_shared_locks(tmp_path / "t.db")
    assert f"is on {tmp_path}, where" in e.value.message and "No locks available" in e.value.message
    assert [p.name for p in tmp_path.iterdir()] == []  # the probe's file is gone


def test_a_table_where_locks_work_is_accepted(mountinfo: list[str], tmp_path: Path) -> None:
    mountinfo[0] = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    require_shared_locks(tmp_path / "t.db")
    assert list(tmp_path.iterdir()) == []


def test_a_disk_io_error_names_the_directory_that_refuses_writes(tmp_path: Path) -> None:
    """A COMMIT in a directory made immutable meanwhile (its rollback journal cannot be removed)
    says only "disk I/O error" (a CI run's jobmon stopped on it with a traceback): asked, the
    directory says it refuses writes; in a writable one it stays an I/O error of the file."""
    import sqlite3

    e = sqlite3.OperationalError("disk I/O error")
    gone = sqlite.translated(e, tmp_path / "no-such-dir" / "state.db")
    assert isinstance(gone, OSError) and gone.errno == errno.EACCES
    assert gone.filename == str(tmp_path / "no-such-dir")
    here = sqlite.translated(e, tmp_path / "state.db")
    assert isinstance(here, OSError) and here.errno == errno.EIO
    assert not list(tmp_path.iterdir())   # the probe left nothing
