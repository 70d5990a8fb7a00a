"""Fixtures of the review tests: a headless Chromium driven by Selenium, and a run directory.

``browser`` starts Debian's ``chromium`` through its ``chromedriver`` (hack/setup.sh installs
both), headless, with downloads going to a temporary directory. Without them the tests skip,
unless KUBETUNE_REQUIRE_BROWSER is set (hack/test.sh sets it), where that is an error.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetune.api.contract import samples


def _missing(message: str) -> None:
    if os.environ.get("KUBETUNE_REQUIRE_BROWSER"):
        pytest.fail(f"KUBETUNE_REQUIRE_BROWSER is set but {message}", pytrace=False)
    pytest.skip(f"{message}; set KUBETUNE_REQUIRE_BROWSER=1 to make this an error")


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    path = tmp_path / "downloads"
    path.mkdir()
    return path


@pytest.fixture
def browser(downloads: Path) -> Iterator[Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        _missing(
            "no chromium/chromedriver on PATH (apt-get install chromium chromium-driver, or hack/setup.sh)"
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    driver = webdriver.Chrome(service=Service(executable_path=str(driver_path)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run directory as ``kubetune run`` leaves it, reduced to what review reads: ten held-out
    samples where the tuned answer is the correct sum and the base answer is not (the first
    with markup that must show as text)."""
    out = tmp_path / "run"
    out.mkdir()
    rows = [
        samples.Sample(
            index=i,
            prompt=f"### Instruction:\nAdd {i} and {i + 3}.\n\n### Response:\n",
            reference=str(2 * i + 3),
            base=f"{i} plus {i + 3} is {i * 7}." + (" </script><b>x</b>" if i == 0 else ""),
            tuned=str(2 * i + 3),
        )
        for i in range(10)
    ]
    samples.write(rows, out / samples.FILENAME)
    return out
