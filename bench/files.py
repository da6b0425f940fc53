"""Issue 4 and issue 17 goal 6: upload and download of one large file through astrlite
(`python -m astrlite` as a subprocess) against the floor, in one run.

The floor (issue 17) is a bare ASGI app under uvicorn --http h11 (bench/baseline_files.py):
its upload writes the raw request body to disk, its download streams the file back.
astrlite's upload is a multipart POST /api/v1/file, its download GET /api/v1/file.
Rounds alternate the servers (who goes first turns each round) and the figures are
medians. A plain copy of the same bytes over a loopback socket into a file is a second
reference. Also reported: each server's CPU time per transfer (user + system, steadier
than wall time on a shared machine) and astrlite's peak RSS growth while it streams.

`python -m bench files --size=64M` for a quick run (default 1G); `--before /work/main`
adds astrlite from another source tree to every round (a before/after in one run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import BENCH_KEY, ROOT, Started, free_port, rss_kib, spawned
from bench.streams import cpu_seconds

MIB = 1024 * 1024
DEFAULT_SIZE = "1G"
DEFAULT_ROUNDS = 3
# The client sends this block over and over: random, so nothing compresses or dedups,
# and small, so the client's own memory stays out of the picture.
BLOCK = os.urandom(MIB)
RECEIVE_SIZE = MIB
BOUNDARY = "benchboundary7f3a9c"
TARGETS = {"upload": 0.75, "download": 0.9}  # x the floor (issue 17 goal 6)
PLAIN_TARGETS = {"upload": 0.4, "download": 0.7}  # x the plain copy (issue 4)
RSS_TARGET_MIB = 16.0
_UNITS = {"": 1, "K": 1024, "M": MIB, "G": 1024 * MIB}


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]?)(?:I?B)?", text.strip().upper())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 64M or 1G)")
    return int(match[1]) * _UNITS[match[2]]


def blocks(size: int) -> Iterator[memoryview]:
    view = memoryview(BLOCK)
    sent = 0
    while sent < size:
        piece = view[: min(len(BLOCK), size - sent)]
        sent += len(piece)
        yield piece


def expected_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for piece in blocks(size):
        digest.update(piece)
    return digest.hexdigest()


# -- the plain copy ------------------------------------------------------------------


def _receive_into_file(listener: socket.socket, path: str) -> None:
    """The plain copy's receiving end: socket to file with the stdlib's own copy loop
    (shutil.copyfileobj: 64 KiB reads, what a plain Python copy does)."""
    conn, _ = listener.accept()
    with conn, conn.makefile("rb") as source, open(path, "wb") as target:
        shutil.copyfileobj(source, target)


def plain_copy(size: int, path: Path) -> float:
    """Seconds to send size bytes over loopback into a file written by another process."""
    listener = socket.create_server(("127.0.0.1", 0))
    receiver = multiprocessing.get_context("fork").Process(
        target=_receive_into_file, args=(listener, str(path))
    )
    receiver.start()
    started = time.perf_counter()
    with socket.create_connection(listener.getsockname()) as sock:
        for piece in blocks(size):
            sock.sendall(piece)
    receiver.join()
    elapsed = time.perf_counter() - started
    listener.close()
    if path.stat().st_size != size:
        raise RuntimeError("plain copy lost bytes")
    path.unlink()
    return elapsed


# -- the servers ---------------------------------------------------------------------


@contextmanager
def astrlite(data_dir: str, max_upload: int, root: Path = ROOT) -> Iterator[Started]:
    port = free_port()
    command = [
        *(sys.executable, "-m", "astrlite", "--port", str(port), "--data-dir", data_dir),
        *("--max-upload-bytes", str(max_upload), "--access-log", "0"),
    ]
    with spawned(command, port, "/api/v1/openapi.json", root=root) as started:
        yield started


@contextmanager
def floor(path: Path) -> Iterator[Started]:
    """bench/baseline_files.py under uvicorn --http h11, its file at path."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.baseline_files:app", "--http", "h11"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    with spawned(command, port, "/", {"BENCH_FILES_PATH": str(path)}) as started:
        yield started


# -- the client ----------------------------------------------------------------------


def _read_head(sock: socket.socket) -> tuple[bytes, bytes, int]:
    """Read a response head: (head, the body bytes read with it, Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            raise RuntimeError("connection closed before the response head")
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected answer: {head[:200]!r}")
    length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head)[1])  # type: ignore[index]
    return head, body, length


def _read_response(sock: socket.socket) -> bytes:
    _, body, length = _read_head(sock)
    while len(body) < length:
        body += sock.recv(65536)
    return body


def send_body(
    server: Started, head: bytes, parts: Iterator[bytes | memoryview]
) -> tuple[float, bytes]:
    started = time.perf_counter()
    with socket.create_connection(server.address) as sock:
        sock.sendall(head)
        for piece in parts:
            sock.sendall(piece)
        body = _read_response(sock)
    return time.perf_counter() - started, body


def upload_multipart(server: Started, size: int) -> tuple[float, dict[str, object]]:
    opening = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    closing = f"\r\n--{BOUNDARY}--\r\n".encode()
    head = (
        "POST /api/v1/file HTTP/1.1\r\nHost: bench\r\n"
        f"X-API-Key: {BENCH_KEY}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(opening) + size + len(closing)}\r\n\r\n"
    ).encode()
    seconds, body = send_body(server, head, iter([opening, *blocks(size), closing]))
    answer = json.loads(body)
    if answer["status"] != "ok" or answer["data"]["size"] != size:
        raise RuntimeError(f"upload failed: {answer}")
    data: dict[str, object] = answer["data"]
    return seconds, data


def upload_raw(server: Started, size: int) -> float:
    head = (
        "POST /file HTTP/1.1\r\nHost: bench\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    seconds, body = send_body(server, head, blocks(size))
    if int(body) != size:
        raise RuntimeError(f"the floor stored {body!r} bytes, sent {size}")
    return seconds


def download(server: Started, target: str, size: int, digest: str | None = None) -> float:
    """Seconds to GET target (its body discarded); checked against digest when given
    (hashing slows the client, so only when asked)."""
    request = f"GET {target} HTTP/1.1\r\nHost: bench\r\nX-API-Key: {BENCH_KEY}\r\n\r\n".encode()
    buffer = bytearray(RECEIVE_SIZE)
    view = memoryview(buffer)
    hasher = hashlib.sha256() if digest is not None else None
    started = time.perf_counter()
    with socket.create_connection(server.address) as sock:
        sock.sendall(request)
        _, first, length = _read_head(sock)
        if length != size:
            raise RuntimeError(f"download announces {length} bytes, expected {size}")
        if hasher is not None:
            hasher.update(first)
        remaining = length - len(first)
        while remaining > 0:
            received = sock.recv_into(buffer, min(len(buffer), remaining))
            if not received:
                raise RuntimeError("download ended early")
            if hasher is not None:
                hasher.update(view[:received])
            remaining -= received
    elapsed = time.perf_counter() - started
    if hasher is not None and hasher.hexdigest() != digest:
        raise RuntimeError(f"{target}: downloaded bytes differ from the uploaded ones")
    return elapsed


def reset_peak_rss(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+).
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_growth_mib(pid: int, baseline_kib: int) -> float:
    return (rss_kib(pid, "VmHWM") - baseline_kib) / 1024


def warm_pages(scratch: Path, size: int) -> None:
    """Write and delete size bytes so the next measurement writes into warm pages.

    On a VM, page-cache pages the guest has not touched lately fault in several times
    slower (measured here: ~0.5 GB/s fresh, ~6 GB/s just freed), which swamps what is
    measured. Each upload is preceded by this, so all of them get the same pages.
    """
    path = scratch / "warm.bin"
    with open(path, "wb", buffering=0) as file:
        for piece in blocks(size):
            file.write(piece)
    path.unlink()


# -- the run -------------------------------------------------------------------------


@dataclass
class Figures:
    """Seconds per round (wall, and the server's CPU), by server name."""

    upload: dict[str, list[float]] = field(default_factory=dict)
    download: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    plain: list[float] = field(default_factory=list)
    growth: dict[str, float] = field(default_factory=dict)

    def add(self, kind: str, name: str, seconds: float, cpu: float) -> None:
        getattr(self, kind).setdefault(name, []).append(seconds)
        self.cpu.setdefault((kind, name), []).append(cpu)


@dataclass
class Contender:
    """An astrlite server (or the floor) and how to drive it."""

    name: str
    server: Started
    upload: Callable[[], str]  # uploads, returns the download target
    pid_watched: bool = False


def measure_upload(contender: Contender, figures: Figures, scratch: Path, size: int) -> str:
    warm_pages(scratch, size)
    pid = contender.server.process.pid
    baseline = rss_kib(pid)
    reset_peak_rss(pid)
    cpu = cpu_seconds(pid)
    started = time.perf_counter()
    target = contender.upload()
    seconds = time.perf_counter() - started
    figures.add("upload", contender.name, seconds, cpu_seconds(pid) - cpu)
    if contender.pid_watched:
        growth = peak_growth_mib(pid, baseline)
        figures.growth["upload"] = max(figures.growth.get("upload", 0.0), growth)
    return target


def measure_download(contender: Contender, target: str, figures: Figures, size: int) -> None:
    pid = contender.server.process.pid
    baseline = rss_kib(pid)
    reset_peak_rss(pid)
    cpu = cpu_seconds(pid)
    seconds = download(contender.server, target, size)
    figures.add("download", contender.name, seconds, cpu_seconds(pid) - cpu)
    if contender.pid_watched:
        growth = peak_growth_mib(pid, baseline)
        figures.growth["download"] = max(figures.growth.get("download", 0.0), growth)


def _astrlite_upload(server: Started, size: int) -> Callable[[], str]:
    def run() -> str:
        _, data = upload_multipart(server, size)
        return f"/api/v1/file?attachment_id={data['attachment_id']}"

    return run


def _floor_upload(server: Started, size: int) -> Callable[[], str]:
    def run() -> str:
        upload_raw(server, size)
        return "/file"

    return run


def run(size: int, rounds: int, before: Path | None) -> None:
    print(f"file size: {size / MIB:.0f} MiB, medians of {rounds} interleaved rounds", flush=True)
    digest = expected_sha256(size)
    figures = Figures()
    with tempfile.TemporaryDirectory(prefix="astrlite-bench-") as tmp, ExitStack() as stack:
        scratch = Path(tmp)
        base = stack.enter_context(floor(scratch / "floor.bin"))
        ours = stack.enter_context(astrlite(str(scratch / "data"), size))
        contenders = [
            Contender("floor", base, _floor_upload(base, size)),
            Contender("astrlite", ours, _astrlite_upload(ours, size), pid_watched=True),
        ]
        if before is not None:
            old = stack.enter_context(astrlite(str(scratch / "before"), size, root=before))
            contenders.append(Contender("before", old, _astrlite_upload(old, size)))
        for contender in contenders:  # warm up: imports, threads, the database
            if contender.name != "floor":
                upload_multipart(contender.server, MIB)
        for turn in range(rounds):
            order = contenders[turn % len(contenders) :] + contenders[: turn % len(contenders)]
            warm_pages(scratch, size)
            figures.plain.append(plain_copy(size, scratch / "copy.bin"))
            for contender in order:
                target = measure_upload(contender, figures, scratch, size)
                if turn == 0:  # each server's bytes checked once, outside the timings
                    download(contender.server, target, size, digest)
                measure_download(contender, target, figures, size)
            line = ", ".join(
                f"{kind} {name} {size / getattr(figures, kind)[name][-1] / 1e6:.0f}"
                for kind in ("upload", "download")
                for name in (c.name for c in contenders)
            )
            print(f"  round {turn + 1}: {line} MB/s", flush=True)
    summarise(figures, size)


def summarise(figures: Figures, size: int) -> None:
    plain = statistics.median(figures.plain)
    print(f"plain copy            {size / plain / 1e6:8.0f} MB/s", flush=True)
    for kind in ("upload", "download"):
        times: dict[str, list[float]] = getattr(figures, kind)
        floor_time = statistics.median(times["floor"])
        for name, values in times.items():
            seconds = statistics.median(values)
            cpu = statistics.median(figures.cpu[kind, name])
            line = f"{kind:<9} {name:<9} {size / seconds / 1e6:6.0f} MB/s ({seconds:.2f} s, "
            line += f"server CPU {cpu:.2f} s)"
            if name != "floor":
                ratio = floor_time / seconds
                verdict = "ok" if ratio >= TARGETS[kind] else "MISSED"
                line += f"  {ratio:.2f}x the floor (target >= {TARGETS[kind]}x: {verdict})"
                line += f", CPU {cpu / statistics.median(figures.cpu[kind, 'floor']):.2f}x"
                versus_plain = plain / seconds
                verdict = "ok" if versus_plain >= PLAIN_TARGETS[kind] else "MISSED"
                line += (
                    f", {versus_plain:.2f}x the plain copy (>= {PLAIN_TARGETS[kind]}x: {verdict})"
                )
            print(line, flush=True)
    for name, growth in figures.growth.items():
        verdict = "ok" if growth <= RSS_TARGET_MIB else "MISSED"
        print(
            f"astrlite peak RSS growth during {name}: {growth:.1f} MiB "
            f"(target <= {RSS_TARGET_MIB:.0f} MiB: {verdict})"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench files")
    parser.add_argument("--size", type=parse_size, default=parse_size(DEFAULT_SIZE))
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--before", type=Path, help="also run astrlite from this source tree")
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    run(args.size, args.rounds, args.before)


if __name__ == "__main__":
    main()
