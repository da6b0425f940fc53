"""What ships beside the code: the licence and the systemd unit."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "contrib" / "astrlite.service"


def test_the_licence_file_is_the_one_pyproject_names() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text().splitlines()
    assert 'license = "MIT"' in pyproject and 'license-files = ["LICENSE"]' in pyproject
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")


def test_the_unit_is_hardened() -> None:
    settings = {
        line.split("=", 1)[0]: line.split("=", 1)[1]
        for line in UNIT.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert settings["DynamicUser"] == "yes"
    assert settings["StateDirectory"] == "astrlite"
    assert settings["ProtectSystem"] == "strict"
    assert settings["NoNewPrivileges"] == "yes"
    assert "--data-dir ${STATE_DIRECTORY}" in settings["ExecStart"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verifies_the_unit() -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
