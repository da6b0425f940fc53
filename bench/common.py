"""Starting servers as subprocesses and measuring them."""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tools.build_pyz import collect

ROOT = Path(__file__).resolve().parent.parent
PYZ = ROOT / "dist" / "astrlite.pyz"
BENCH_KEY = "abk_bench_key_0123456789abcdefghijklmnopqrstuvwxyz"
BUILD_PYZ = ROOT / "tools" / "build_pyz.py"


def pyz_is_current(pyz: Path = PYZ, root: Path = ROOT) -> bool:
    """True when ``pyz`` holds exactly the files tools/build_pyz.py would pack from
    ``root``/astrlite (its bytecode aside); compared by content, so a checkout that only
    touched the files' times does not count."""
    tree = collect(root, root / "astrlite")
    try:
        with zipfile.ZipFile(pyz) as archive:
            packed = {
                name
                for name in archive.namelist()
                if name.startswith("astrlite/") and not name.endswith(".pyc")
            }
            return packed == tree.keys() and all(
                archive.read(name) == data for name, data in tree.items()
            )
    except (OSError, zipfile.BadZipFile):
        return False


def ensure_current_pyz() -> None:
    """Most benchmarks run dist/astrlite.pyz: rebuild it first if it is missing or
    holds other sources than the tree's, or they would measure older code."""
    if pyz_is_current():
        return
    print(f"{PYZ.relative_to(ROOT)} does not hold this tree's astrlite/: building it", flush=True)
    if subprocess.run([sys.executable, str(BUILD_PYZ)]).returncode != 0:
        sys.exit(f"could not build {PYZ.relative_to(ROOT)} (tools/build_pyz.py failed, above)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def astrlite_command(port: int, data_dir: str) -> list[str]:
    return [sys.executable, str(PYZ), "--port", str(port), "--data-dir", data_dir]


def uvicorn_command(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.baseline_app:app",
        "--http",
        "h11",
        "--port",
        str(port),
    ]


@dataclass
class Started:
    process: subprocess.Popen[bytes]
    port: int
    seconds_to_first_answer: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port


def wait_for_answer(
    url: str, started: float, timeout: float = 20, process: subprocess.Popen[bytes] | None = None
) -> float:
    while time.perf_counter() - started < timeout:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            # With the key: the first answer a user gets is an authenticated one.
            probe = urllib.request.Request(url, headers={"X-API-Key": BENCH_KEY})
            with urllib.request.urlopen(probe, timeout=1) as response:
                response.read()
                return time.perf_counter() - started
        except OSError:
            time.sleep(0.002)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@contextmanager
def spawned(
    command: list[str],
    port: int,
    probe: str,
    extra_env: Mapping[str, str] | None = None,
    root: Path = ROOT,
    timeout: float = 20,
) -> Iterator[Started]:
    """Run a server process until the block ends; ready once `probe` answers.
    ``root``: the source tree it imports (another checkout, for a before/after run)."""
    env = {
        **os.environ,
        "ASTRLITE_API_KEY": BENCH_KEY,
        "PYTHONPATH": str(root),
        **(extra_env or {}),
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        seconds = wait_for_answer(f"http://127.0.0.1:{port}{probe}", started, timeout, process)
        yield Started(process, port, seconds)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def server(kind: str, data_dir: str | None = None) -> Iterator[Started]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "astrlite":
            command, probe = astrlite_command(port, data_dir or tmp), "/api/v1/im/bots"
        else:
            command, probe = uvicorn_command(port), "/"
        with spawned(command, port, probe) as started:
            yield started


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) if match else 0


def median(values: list[float]) -> float:
    return statistics.median(values)


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


@dataclass
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(
    url: str, *, connections: int = 32, seconds: int = 5, headers: dict[str, str] | None = None
) -> Load:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    return Load(rps, p50, p99)
