"""Process tuning: malloc thresholds applied on glibc without running ldconfig
(ctypes.util.find_library spawns it, and imports tempfile, shutil and lzma, at every
start), and the collector's young-generation threshold."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import sys
from astrlite.tuning import tune_malloc
applied = tune_malloc()
print(applied, sorted(m for m in ("subprocess", "tempfile", "ctypes.util") if m in sys.modules))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_malloc_tuning_without_a_subprocess() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=30
    )
    assert done.stdout.split(maxsplit=1) == ["True", "[]\n"]


COLLECT = """
import gc
from astrlite.tuning import GEN0_THRESHOLD, collect_less_often
before = gc.get_threshold()
collect_less_often()
print(gc.get_threshold() == (GEN0_THRESHOLD, *before[1:]), before[0] < GEN0_THRESHOLD)
"""


def test_young_collections_start_less_often() -> None:
    """In a process of its own: the test run's collector stays as it is."""
    done = subprocess.run(
        [sys.executable, "-c", COLLECT], capture_output=True, text=True, check=True, timeout=30
    )
    assert done.stdout.split() == ["True", "True"]
