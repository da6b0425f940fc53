"""Running out of file descriptors: the accept loop backs off and recovers."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
FD_LIMIT = 64


def limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def test_emfile_backs_off_then_serves_again(tmp_path: Path) -> None:
    env = {**os.environ, "ASTRLITE_API_KEY": "abk_descriptor_test_key_0123456789"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "astrlite",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
            "--header-timeout",
            "30",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit_descriptors,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split(" listening on ")[1].strip()
        host, port = url.removeprefix("http://").split(":")
        held = []
        for _ in range(FD_LIMIT + 20):  # more than the server can have open
            held.append(socket.create_connection((host, int(port)), timeout=5))
        time.sleep(0.5)  # the server hits EMFILE and backs off
        for sock in held:
            sock.close()
        response = httpx.get(url + "/api/v1/openapi.json", timeout=10)
        assert response.status_code == 200
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    assert "accept failed" in stderr and "retrying" in stderr
    assert process.returncode == 0
