"""`astrlite serve` as a process: the banner, a typo'd variable, JSON logs, and Ctrl-C
with a stream open (what it waits for; a second Ctrl-C is a clean exit)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[2]
KEY = "ops-test-key-0123456789abcdef"
WAIT = 10.0


class Lines:
    """A pipe read on a thread, so a test can wait for a line with a deadline."""

    def __init__(self, pipe: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()

    def _pump(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, needle: str) -> str:
        while True:
            line = self._queue.get(timeout=WAIT)
            assert line is not None, f"no line with {needle!r} in {self.seen}"
            self.seen.append(line)
            if needle in line:
                return line

    def rest(self) -> list[str]:
        while (line := self._queue.get(timeout=WAIT)) is not None:
            self.seen.append(line)
        return self.seen


@contextmanager
def serve(
    data_dir: Path, *args: str, **env: str
) -> Iterator[tuple[subprocess.Popen[str], Lines, Lines]]:
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "ASTRLITE_API_KEY": KEY, **env}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "astrlite",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        yield process, Lines(process.stdout), Lines(process.stderr)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(WAIT)


def write_config(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "rules.json").write_text(
        json.dumps({"rules": [{"match": "slow", "reply": "never mind", "delay_ms": 60000}]})
    )
    config = {
        "provider": "rules",
        "providers": [
            {"id": "echo", "type": "echo"},
            {"id": "rules", "type": "scripted", "rules_file": "rules.json"},
        ],
        "platforms": [
            {"id": "box", "type": "outbox"},
            {"id": "off", "type": "outbox", "enable": False},
        ],
    }
    (data_dir / "config.json").write_text(json.dumps(config))


def test_banner_ctrl_c_twice_and_a_typo(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    write_config(data_dir)
    with serve(data_dir, "--shutdown-grace", "60", ASTRLITE_PROT="1") as (process, out, err):
        url = out.wait_for("listening on").rsplit(" ", 1)[1]
        assert out.wait_for("config default") == (
            "config default (config.json): providers echo (echo), rules (scripted, default)"
        )
        assert out.wait_for("platforms:") == (
            "platforms: webchat (built in), box (outbox), off (outbox, disabled)"
        )
        assert out.wait_for("health") == f"health {url}/health"
        err.wait_for(
            "unknown environment variable ASTRLITE_PROT is ignored; did you mean ASTRLITE_PORT?"
        )

        opened = threading.Event()

        def chat() -> None:
            body = {"username": "alice", "message": "slow"}
            headers = {"X-API-Key": KEY}
            try:
                with httpx.stream("POST", url + "/api/v1/chat", json=body, headers=headers) as r:
                    for _ in r.iter_lines():
                        opened.set()
            except httpx.HTTPError:
                pass  # cut short by the second Ctrl-C

        reader = threading.Thread(target=chat, daemon=True)
        reader.start()
        assert opened.wait(WAIT)
        process.send_signal(signal.SIGINT)
        assert err.wait_for("shutting down").endswith(
            "received Ctrl-C, shutting down: waiting up to 60 s for 1 request; "
            "Ctrl-C again to stop now"
        )
        process.send_signal(signal.SIGINT)
        err.wait_for("received Ctrl-C again, stopping now")
        assert process.wait(WAIT) == 0
        stderr = "\n".join(err.rest())
        assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
        reader.join(WAIT)


def test_json_logs_carry_the_access_fields(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serve(data_dir, "--log-format", "json") as (process, out, err):
        url = out.wait_for("listening on").rsplit(" ", 1)[1]
        headers = {"X-API-Key": KEY, "User-Agent": "ops-test/1"}
        assert httpx.get(url + "/api/v1/im/bots", headers=headers).status_code == 200
        line = json.loads(err.wait_for('"logger": "astrlite.access"'))
        process.send_signal(signal.SIGTERM)
        assert process.wait(WAIT) == 0
        lines = err.rest()
    assert line["client"].startswith("127.0.0.1:")
    assert line["key_id"] and KEY not in json.dumps(line)
    assert (line["method"], line["target"], line["status"]) == ("GET", "/api/v1/im/bots", 200)
    assert line["bytes"] > 0 and line["duration_ms"] >= 0 and line["user_agent"] == "ops-test/1"
    assert line["level"] == "info" and line["time"].endswith("Z")
    for text in lines:  # every line a JSON object, the shutdown notice included
        json.loads(text)
