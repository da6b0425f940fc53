"""Process-wide tuning for the standalone server (never applied when embedded).

Uploads move through 256 KiB read buffers. With glibc's default thresholds, freeing
them trims the heap and the next read grows it again: measured 35-40 % of the event
loop's CPU in page faults during a 1 GiB upload. Raising the mmap and trim thresholds
keeps those pages (upload throughput 0.38x -> 0.52x of a plain socket copy).

What start-up made (modules, the route table, configs) lives as long as the process,
yet every full pass of the cyclic garbage collector walks it: under 32 concurrent chat
turns that was a 10-17 ms pause about once a second, paid by every request in flight
(`freeze_start_up_objects`).

A chat turn allocates and frees thousands of container objects, and with the default
threshold (700 net allocations) a young collection ran 67 times a second under 32
concurrent turns: 2 % of the event loop, each walking objects that would have been
freed a moment later anyway. At 10,000 it runs three or four times a second
(`collect_less_often`)."""

from __future__ import annotations

import ctypes
import gc
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024
GEN0_THRESHOLD = 10_000


def tune_malloc() -> bool:
    """Apply the thresholds where glibc's mallopt exists; True when applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        # The process's own symbols, libc's among them: ctypes.util.find_library would run
        # ldconfig in a subprocess (and import tempfile, shutil, lzma) at every start.
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)  # glibc has it; musl does not
    if mallopt is None:
        return False
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


def freeze_start_up_objects() -> None:
    """Move every object made so far out of the collector's generations (gc.freeze)."""
    gc.freeze()


def collect_less_often() -> None:
    """Start a young collection after GEN0_THRESHOLD net allocations instead of 700."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, older, oldest)
