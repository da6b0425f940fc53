"""Is the store usable: the database answers a query and the data directory takes a new
file. The write probe runs off the event loop, so a stuck disk cannot stall requests."""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread

from astrlite.store.db import Database

# A probe slower than this counts as a failure: a supervisor is waiting on the answer.
PROBE_TIMEOUT = 2.0


def _write_probe(data_dir: Path) -> str | None:
    probe = data_dir / f".health-{os.urandom(16).hex()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        return f"data directory {data_dir} is not writable: {error.strerror}"
    return None


@dataclass
class HealthProbe:
    db: Database
    data_dir: Path
    started: float = field(default_factory=time.monotonic)

    def uptime(self) -> float:
        return time.monotonic() - self.started

    async def problem(self) -> str | None:
        """None when healthy, else what is wrong in words an operator can act on."""
        try:
            self.db.reader.execute("SELECT version FROM schema_version").fetchone()
        except sqlite3.Error as error:
            return f"database: {error}"
        with anyio.move_on_after(PROBE_TIMEOUT):
            return await anyio.to_thread.run_sync(
                _write_probe, self.data_dir, abandon_on_cancel=True
            )
        return f"data directory {self.data_dir} did not answer within {PROBE_TIMEOUT:g} s"
