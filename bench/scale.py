"""Issue 14: scale on one box. `python -m bench scale [--baseline REF]`.

Fills a data directory to 10^6 sessions (half of them one user's), 10^6 history rows
and 10^5 attachments by bulk inserts behind the server's back (bench/scale_fill.py),
then measures this tree and a baseline (default: the ``main`` branch, exported with
``git archive``) in the same run, each on an empty database (only a first page of
sessions for each bench user) and on the filled one. The
baseline fills with its own schema; this tree's server migrates a copy at start-up.

Rows: GET /im/bots; a sessions page 1 for a 500-session user and for the
500,000-session user, that user's page 25,000; an echo chat turn in a new session and
in a 20,000-row one; a download by id among 10^5; GET /im/bots while 4 clients fetch
deep pages. Then echo turns/s and p99 at concurrency 1, 32 and 100 (new sessions), the
filled database's size, and the sweeper's cost (retention and attachment cap set to
delete about a tenth of everything, measured with turns running).

At concurrency 32 a third server takes its turn in the same rounds: the machine's floor,
a bare uvicorn h11 app streaming the same eight events with nothing behind them
(bench/baseline_sse.py). The goal's p99 is an absolute figure on a machine whose speed
moves by a third from one minute to the next; the floor, measured in the same minutes,
tells what the machine allowed then.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from bench import scale_fill
from bench.common import BENCH_KEY, ROOT, Started, free_port, spawned
from bench.streams import Client, Exchange, connect_all, get, percentile, post, raise_file_limit

ECHO_CONFIG = {"provider": "echo", "providers": [{"id": "echo", "type": "echo"}]}
BOTS = "/api/v1/im/bots"
CHAT = "/api/v1/chat"
PAGE_SIZE = 20
DEEP_PAGE = scale_fill.BIG_SESSIONS // PAGE_SIZE // 20 * 20  # 25,000
SHORT_EVENTS = 8  # an echo turn of "hello there": session_id, 3 deltas, 4 closing events
SAMPLES = 200
DEEP_SAMPLES = 20
LOAD_CLIENTS = 4
LOAD_SECONDS = 6.0
BOTS_SPACING = 0.005
TURN_SECONDS = 9.0  # per concurrency and server, in ROUNDS rounds: long enough to settle
CONCURRENCY = (1, 32, 100)
START_TIMEOUT = 300.0  # the first start on a filled copy migrates it
SWEEP_SHARE = 0.1
SWEEP_TIMEOUT = 600.0
ROUNDS = 6  # each row is measured in this many rounds per server, alternating
MINE = "this tree"
FLOOR = "floor"
FLOOR_APP = "bench.baseline_sse:app"
FLOOR_CONCURRENCY = 32
GOAL_RATIO = 2.0
GOAL_DEEP_MS = 50.0
GOAL_TURN_P99_MS = 25.0
# The c=32 p50s on the machine the day issue 14 set the goal: wave 1 (c69d12f) and a bare
# relay. The same code and load measured now tell how the machine's speed has moved since.
GOAL_SET_WAVE1_P50_MS = 31.0
GOAL_SET_FLOOR_P50_MS = 7.2


def sessions_path(user: str, page: int) -> str:
    return f"/api/v1/chat/sessions?username={user}&page={page}&page_size={PAGE_SIZE}"


def chat(session_id: str | None = None) -> bytes:
    body: dict[str, object] = {"username": scale_fill.USER, "message": "hello there"}
    if session_id is not None:
        body["session_id"] = session_id
    return post(CHAT, body)


class Turns(NamedTuple):
    per_s: float
    p50: float  # ms
    p99: float
    errors: int


@dataclass
class Figures:
    p50: dict[str, float] = field(default_factory=dict)  # row -> ms
    p99: dict[str, float] = field(default_factory=dict)
    turns: dict[int, Turns] = field(default_factory=dict)  # by concurrency
    start_s: float = 0.0


# -- measuring one server ------------------------------------------------------------


async def timed(
    client: Client, requests: Callable[[int], bytes], count: int, status: int = 200
) -> list[float]:
    times = []
    for index in range(count):
        exchange = await client.exchange(requests(index))
        if exchange.status != status:
            raise RuntimeError(f"status {exchange.status}: {exchange.body[:200]!r}")
        times.append(exchange.total * 1000)
    return times


def record(figures: Figures, row: str, times: list[float]) -> None:
    figures.p50[row] = percentile(times, 0.5)
    figures.p99[row] = percentile(times, 0.99)


async def spaced_bots(client: Client, seconds: float) -> list[float]:
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        times.append((await client.exchange(get(BOTS))).total * 1000)
        await asyncio.sleep(BOTS_SPACING)
    return times


async def upload_one(host: str, port: int) -> str:
    boundary = "scalebench"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + bytes(scale_fill.ATTACHMENT_BYTES)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /api/v1/file HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {BENCH_KEY}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    client = await Client.connect(host, port)
    exchange = await client.exchange(head + body)
    client.close()
    answer = json.loads(exchange.body)
    attachment_id: str = answer["data"]["attachment_id"]
    return attachment_id


@dataclass
class Target:
    """One server under test, and what was measured on it."""

    name: str
    started: Started
    client: Client
    attachment_ids: list[str]
    samples: dict[str, list[float]] = field(default_factory=dict)
    turn_times: dict[int, list[float]] = field(default_factory=dict)
    turn_seconds: dict[int, float] = field(default_factory=dict)
    turn_errors: dict[int, int] = field(default_factory=dict)

    def add(self, row: str, times: list[float]) -> None:
        self.samples.setdefault(row, []).extend(times)

    def figures(self) -> Figures:
        figures = Figures(start_s=self.started.seconds_to_first_answer)
        for row, times in self.samples.items():
            record(figures, row, times)
        for concurrency, times in self.turn_times.items():
            figures.turns[concurrency] = Turns(
                len(times) / self.turn_seconds[concurrency],
                percentile(times, 0.5),
                percentile(times, 0.99),
                self.turn_errors[concurrency],
            )
        return figures


async def turns(target: Target, concurrency: int, seconds: float) -> None:
    """Whole echo turns in new sessions from ``concurrency`` clients for ``seconds``."""
    clients = await connect_all(*target.started.address, concurrency)
    done = target.turn_times.setdefault(concurrency, [])
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(client: Client) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            try:
                exchange = await client.exchange(chat())
            except ConnectionError:
                errors += 1
                return
            if exchange.status != 200 or exchange.events != SHORT_EVENTS:
                errors += 1
            done.append(exchange.total * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients))
    elapsed = time.perf_counter() - started
    for client in clients:
        client.close()
    target.turn_seconds[concurrency] = target.turn_seconds.get(concurrency, 0.0) + elapsed
    target.turn_errors[concurrency] = target.turn_errors.get(concurrency, 0) + errors


def in_turn(targets: list[Target], round_number: int) -> list[Target]:
    """Alternate who goes first, so a drift in the machine's load hits both alike."""
    return targets if round_number % 2 == 0 else targets[::-1]


async def measure(targets: list[Target], floor: Target) -> None:
    """Every row in ROUNDS rounds, alternating between the servers (they run side by
    side, idle while the other is measured): on a shared machine, load that comes and
    goes then falls on both. The floor takes part in the turns at FLOOR_CONCURRENCY."""
    await timed(floor.client, lambda _: chat(), 20)  # warm up
    for target in targets:
        await timed(target.client, lambda _: get(BOTS), 50)  # warm up
        await timed(target.client, lambda _: chat(), 20)
        if not target.attachment_ids:
            target.attachment_ids = [await upload_one(*target.started.address)]
    small, big = scale_fill.USER, scale_fill.BIG_USER
    long_turn = chat(scale_fill.LONG_SESSION)
    rows: list[tuple[str, Callable[[Target], Callable[[int], bytes]], int]] = [
        ("bots", lambda t: lambda _: get(BOTS), SAMPLES),
        ("page 1, 500 sessions", lambda t: lambda _: get(sessions_path(small, 1)), SAMPLES),
        ("page 1, 500,000 sessions", lambda t: lambda _: get(sessions_path(big, 1)), SAMPLES),
        (
            f"page {DEEP_PAGE:,}, 500,000 sessions",
            lambda t: lambda _: get(sessions_path(big, DEEP_PAGE)),
            DEEP_SAMPLES,
        ),
        ("echo turn, new session", lambda t: lambda _: chat(), SAMPLES),
        ("echo turn, 20,000-row session", lambda t: lambda _: long_turn, SAMPLES),
        (
            "download by id",
            lambda t: (
                lambda i: get(
                    f"/api/v1/file?attachment_id={t.attachment_ids[i % len(t.attachment_ids)]}"
                )
            ),
            SAMPLES,
        ),
    ]
    for row, requests, count in rows:
        for round_number in range(ROUNDS):
            for target in in_turn(targets, round_number):
                target.add(row, await timed(target.client, requests(target), count // ROUNDS))
    for round_number in range(ROUNDS):
        for target in in_turn(targets, round_number):
            target.add("bots, idle", await spaced_bots(target.client, LOAD_SECONDS / ROUNDS))
            target.add("bots, 4 clients on deep pages", await under_deep_load(target))
    for concurrency in CONCURRENCY:
        group = [*targets, floor] if concurrency == FLOOR_CONCURRENCY else targets
        for round_number in range(ROUNDS):
            for target in in_turn(group, round_number):
                await turns(target, concurrency, TURN_SECONDS / ROUNDS)


async def under_deep_load(target: Target) -> list[float]:
    loaders = await connect_all(*target.started.address, LOAD_CLIENTS)
    deep = get(sessions_path(scale_fill.BIG_USER, DEEP_PAGE))
    stop = False

    async def load(loader: Client) -> None:
        while not stop:
            await loader.exchange(deep)

    tasks = [asyncio.ensure_future(load(loader)) for loader in loaders]
    await asyncio.sleep(0.2)
    try:
        return await spaced_bots(target.client, LOAD_SECONDS / ROUNDS)
    finally:
        stop = True
        await asyncio.gather(*tasks)
        for loader in loaders:
            loader.close()


async def measure_side_by_side(
    servers: dict[str, Started], attachment_ids: list[str], bare: Started
) -> dict[str, Figures]:
    """Figures by server name, and the floor's (named FLOOR) for its turns."""
    targets = [
        Target(name, started, await Client.connect(*started.address), list(attachment_ids))
        for name, started in servers.items()
    ]
    floor = Target(FLOOR, bare, await Client.connect(*bare.address), [])
    await measure(targets, floor)
    for target in (*targets, floor):
        target.client.close()
    return {target.name: target.figures() for target in (*targets, floor)}


# -- servers, trees and data -----------------------------------------------------------


@contextmanager
def server(root: Path, data_dir: Path, args: tuple[str, ...] = ()) -> Iterator[Started]:
    port = free_port()
    command = [sys.executable, "-m", "astrlite", "--port", str(port), "--data-dir", str(data_dir)]
    # Connections wait while the other server is measured: keep them open meanwhile.
    command += ["--access-log", "0", "--keepalive-timeout", "3600", *args]
    # A probe every astrlite answers: wave 1's openapi.json needed the repository root.
    with spawned(command, port, BOTS, root=root, timeout=START_TIMEOUT) as started:
        yield started


@contextmanager
def floor_server() -> Iterator[Started]:
    """The floor app under uvicorn, without an access log (the servers run without)."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", FLOOR_APP, "--http", "h11", "--no-access-log"]
    with spawned([*command, "--port", str(port)], port, "/") as started:
        yield started


def export(ref: str, target: Path) -> Path:
    """The tree of ``ref`` (a branch or commit of this repository) in ``target``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, "astrlite"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def schema_by(root: Path) -> Callable[[Path], None]:
    def create(data_dir: Path) -> None:
        code = (
            "import sys, pathlib; from astrlite.store.db import administer; "
            "administer(pathlib.Path(sys.argv[1]), lambda conn: None)"
        )
        subprocess.run(
            [sys.executable, "-c", code, str(data_dir)],
            env={"PYTHONPATH": str(root)},
            cwd=root,  # `-c` puts the working directory first on sys.path
            check=True,
        )

    return create


def prepared(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(ECHO_CONFIG))
    return path


def seeded(path: Path, root: Path) -> Path:
    """An "empty" database, but with a full first page for both bench users."""
    scale_fill.seed(prepared(path), schema_by(root))
    return path


def on_disk(data_dir: Path) -> int:
    db = data_dir / scale_fill.DB_NAME
    wal = data_dir / (scale_fill.DB_NAME + "-wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


# -- the sweeper's cost ----------------------------------------------------------------


@dataclass
class Loaded:
    """32 clients chatting while something else happens."""

    seconds: float
    turns_per_s: float
    turn_p99: float
    bots_p99: float


@dataclass
class SweepCost:
    sweeping: Loaded
    after: Loaded  # the same load once the sweep is done: the baseline


def sweep_limits(data_dir: Path) -> tuple[float, int, int]:
    """Retention days and an attachment cap that delete about SWEEP_SHARE, and the rows
    that will go."""
    days = scale_fill.SPAN_DAYS * (1 - SWEEP_SHARE)
    conn = sqlite3.connect(data_dir / scale_fill.DB_NAME)
    total = int(conn.execute("SELECT SUM(size) FROM attachments").fetchone()[0])
    conn.close()
    cap = int(total * (1 - SWEEP_SHARE))
    rows = int((scale_fill.SESSIONS + scale_fill.HISTORY + scale_fill.ATTACHMENTS) * SWEEP_SHARE)
    return days, cap, rows


def swept(data_dir: Path, cap: int, days: float) -> bool:
    conn = sqlite3.connect(data_dir / scale_fill.DB_NAME)
    try:
        stored = int(conn.execute("SELECT bytes FROM attachment_totals").fetchone()[0])
        oldest = conn.execute("SELECT MIN(updated_at) FROM sessions").fetchone()[0]
    finally:
        conn.close()
    cut = time.time() - days * 86400
    return stored <= cap and datetime.fromisoformat(oldest).timestamp() >= cut - 60


async def chat_load(started: Started, done: Callable[[float], bool]) -> Loaded:
    """32 clients chat and one polls GET /im/bots until ``done(elapsed)``."""
    host, port = started.address
    began = time.perf_counter()
    busy = await connect_all(host, port, 32)
    times: list[float] = []
    stop = False

    async def worker(client: Client) -> None:
        while not stop:
            exchange: Exchange = await client.exchange(chat())
            times.append(exchange.total * 1000)

    tasks = [asyncio.ensure_future(worker(client)) for client in busy]
    bots = await Client.connect(host, port)
    bots_times: list[float] = []
    while not done(time.perf_counter() - began):
        if time.perf_counter() - began > SWEEP_TIMEOUT:
            raise RuntimeError("the sweep did not finish")
        bots_times += await spaced_bots(bots, 0.5)
    seconds = time.perf_counter() - began
    stop = True
    await asyncio.gather(*tasks)
    for client in (*busy, bots):
        client.close()
    return Loaded(
        seconds, len(times) / seconds, percentile(times, 0.99), percentile(bots_times, 0.99)
    )


async def sweep_cost(started: Started, data_dir: Path, cap: int, days: float) -> SweepCost:
    sweeping = await chat_load(started, lambda _: swept(data_dir, cap, days))
    after = await chat_load(started, lambda elapsed: elapsed > min(sweeping.seconds, 10.0))
    return SweepCost(sweeping, after)


# -- the run -----------------------------------------------------------------------------


def baseline_ref() -> str:
    if "--baseline" in sys.argv:
        return sys.argv[sys.argv.index("--baseline") + 1]
    return "main"


def main() -> None:
    raise_file_limit(1024)
    ref = baseline_ref()
    with tempfile.TemporaryDirectory(prefix="astrlite-scale-") as tmp:
        work = Path(tmp)
        base_root = export(ref, work / "baseline")
        filled_base = prepared(work / "filled-base")
        filled = scale_fill.fill(filled_base, schema_by(base_root))
        size_base = on_disk(filled_base)
        print(f"filled in {filled.seconds:.1f} s ({ref}'s schema): {size_base / 2**20:.0f} MiB")
        filled_mine = prepared(work / "filled-mine")
        shutil.copy(filled_base / scale_fill.DB_NAME, filled_mine / scale_fill.DB_NAME)
        (filled_mine / "attachments").symlink_to(filled_base / "attachments")
        results: dict[tuple[str, str], Figures] = {}
        for state, dirs, ids in (
            (
                "empty",
                {
                    ref: seeded(work / "empty-base", base_root),
                    MINE: seeded(work / "empty-mine", ROOT),
                },
                [],
            ),
            ("filled", {ref: filled_base, MINE: filled_mine}, filled.attachment_ids),
        ):
            with (
                server(base_root, dirs[ref]) as base,
                server(ROOT, dirs[MINE]) as mine,
                floor_server() as bare,
            ):
                measured = asyncio.run(measure_side_by_side({ref: base, MINE: mine}, ids, bare))
            for name, figures in measured.items():
                results[name, state] = figures
            print(f"measured {state}", flush=True)
        size_mine = on_disk(filled_mine)
        days, cap, rows = sweep_limits(filled_mine)
        args = ("--retention-days", str(days), "--max-attachment-bytes", str(cap))
        with server(ROOT, filled_mine, args) as started:
            cost = asyncio.run(sweep_cost(started, filled_mine, cap, days))
        report(ref, results, size_base, size_mine, cost, rows)


def turns_text(turns: Turns) -> str:
    return (
        f"{turns.per_s:,.0f}/s p50 {turns.p50:.1f} ms p99 {turns.p99:.1f} ms errors {turns.errors}"
    )


def report(
    ref: str,
    results: dict[tuple[str, str], Figures],
    size_base: int,
    size_mine: int,
    cost: SweepCost,
    swept_rows: int,
) -> None:
    mine_empty, mine_filled = results[MINE, "empty"], results[MINE, "filled"]
    base_empty, base_filled = results[ref, "empty"], results[ref, "filled"]
    print(f"\np50 ms (p99) | {ref} empty | {ref} filled | this empty | this filled | filled/empty")
    for row in mine_empty.p50:
        ratio = mine_filled.p50[row] / mine_empty.p50[row]
        goal = (
            f"goal < {GOAL_DEEP_MS:.0f} ms"
            if row.startswith(f"page {DEEP_PAGE:,}")
            else f"goal <= {GOAL_RATIO:.0f}x"
        )
        cells = [
            f"{figures.p50[row]:.2f} ({figures.p99[row]:.1f})"
            for figures in (base_empty, base_filled, mine_empty, mine_filled)
        ]
        print(f"{row} | {' | '.join(cells)} | {ratio:.2f}x ({goal})")
    idle, busy = mine_filled.p99["bots, idle"], mine_filled.p99["bots, 4 clients on deep pages"]
    print(
        f"\nGET /im/bots p99 under deep-page load, filled: {busy:.2f} ms vs idle {idle:.2f} ms"
        f" = {busy / idle:.2f}x (goal <= {GOAL_RATIO:.0f}x); {ref}: "
        f"{base_filled.p99['bots, 4 clients on deep pages']:.1f} ms vs "
        f"{base_filled.p99['bots, idle']:.2f} ms"
    )
    print("\necho turns, new sessions: turns/s, p50 and p99 ms, errors")
    for state in ("empty", "filled"):
        for concurrency in CONCURRENCY:
            base = results[ref, state].turns[concurrency]
            mine = results[MINE, state].turns[concurrency]
            print(
                f"{state}, c={concurrency}: {ref} {turns_text(base)}; this {turns_text(mine)}"
                f"; ratio {mine.per_s / base.per_s:.2f}x"
                + (f" (goal >= 2x, p99 <= {GOAL_TURN_P99_MS:.0f} ms)" if concurrency == 32 else "")
            )
        bare = results[FLOOR, state].turns[FLOOR_CONCURRENCY]
        mine = results[MINE, state].turns[FLOOR_CONCURRENCY]
        base = results[ref, state].turns[FLOOR_CONCURRENCY]
        print(
            f"{state}, c={FLOOR_CONCURRENCY}, the floor in the same rounds (a bare uvicorn app,"
            f" the same events, no database): {turns_text(bare)}; this tree at"
            f" {mine.per_s / bare.per_s:.2f}x its turns/s"
        )
        print(
            f"{state}, c={FLOOR_CONCURRENCY}, the machine against the day the goal was set"
            f" (p50: wave 1 {GOAL_SET_WAVE1_P50_MS:.0f} ms, a bare relay"
            f" {GOAL_SET_FLOOR_P50_MS} ms): {ref} {base.p50 / GOAL_SET_WAVE1_P50_MS:.2f}x"
            f" and the floor {bare.p50 / GOAL_SET_FLOOR_P50_MS:.2f}x those p50s"
        )
    print(
        f"\nstart-up on the filled database: {ref} {base_filled.start_s:.1f} s, this tree "
        f"{mine_filled.start_s:.1f} s (includes migrating the copy to the new schema)"
    )
    print(
        f"filled database on disk: {ref} {size_base / 2**20:.0f} MiB, this tree "
        f"{size_mine / 2**20:.0f} MiB (file + WAL)"
    )
    during, after = cost.sweeping, cost.after
    print(
        f"sweeper: ~{swept_rows:,} rows (a tenth of sessions, history, attachments) in "
        f"{during.seconds:.1f} s ({swept_rows / during.seconds:,.0f} rows/s) with 32 clients "
        f"chatting: {during.turns_per_s:,.0f} turns/s, turn p99 {during.turn_p99:.1f} ms, "
        f"GET /im/bots p99 {during.bots_p99:.1f} ms; the same load after the sweep: "
        f"{after.turns_per_s:,.0f} turns/s, turn p99 {after.turn_p99:.1f} ms, GET /im/bots "
        f"p99 {after.bots_p99:.1f} ms"
    )


if __name__ == "__main__":
    main()
