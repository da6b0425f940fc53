"""A real headless Chromium driven by selenium, for the chat page's tests.

Debian's `chromium` and `chromium-driver` packages (`.ci/run` installs them); the driver
path is given explicitly, so selenium never tries to download one. Without them the tests
skip, except under `.ci/run` (REQUIRE_BROWSER_TESTS=1), where they fail.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1100,800",
)


def find(*names: str) -> str | None:
    return next((found for name in names if (found := shutil.which(name))), None)


def chromium(profile: Path) -> Any:
    """A fresh browser with its own profile directory; skips when Chromium is absent."""
    binary = find("chromium", "chromium-browser")
    driver_path = find("chromedriver")
    if binary is None or driver_path is None:
        if os.environ.get("REQUIRE_BROWSER_TESTS") == "1":  # set by .ci/run
            pytest.fail("Chromium or chromedriver is missing, and .ci/run requires them")
        pytest.skip(
            "Chromium or chromedriver is not installed (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(driver_path))
