"""Who is using a data directory: running servers hold a shared lock on
``astrlite.lock``, ``astrlite db vacuum`` an exclusive one.

An advisory ``flock`` rather than a pid file or an sqlite lock: the kernel drops it when
its process dies, so a crashed server never leaves a stale lock behind, and it is held
for the server's whole life, while sqlite holds no lock at all when a WAL database is
idle (so sqlite cannot tell that a server is running). The file also records the pid of
the last process that took it, for the message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from astrlite.store.errors import StoreError

LOCK_NAME = "astrlite.lock"


class DirectoryLock:
    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def for_server(cls, data_dir: Path) -> DirectoryLock:
        """Shared: any number of servers; refused while ``db vacuum`` runs."""
        fd = _open(data_dir)
        if not _try(fd, fcntl.LOCK_SH):
            os.close(fd)
            raise StoreError(
                f"astrlite db vacuum is compacting {data_dir}: start the server once it "
                "has finished"
            )
        return cls(_record_pid(fd))

    @classmethod
    def for_maintenance(cls, data_dir: Path, command: str) -> DirectoryLock:
        """Exclusive: refused while a server (or another maintenance command) runs."""
        fd = _open(data_dir)
        if not _try(fd, fcntl.LOCK_EX):
            pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            who = f"an astrlite server (pid {pid})" if pid else "an astrlite server"
            raise StoreError(
                f"{who} is using {data_dir}: stop it, then run astrlite {command} again"
            )
        return cls(_record_pid(fd))

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def _open(data_dir: Path) -> int:
    try:
        return os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise StoreError(f"cannot open {data_dir / LOCK_NAME}: {error.strerror}") from None


def _try(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _record_pid(fd: int) -> int:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
