"""Take docs/images/review-page.png: the review page of an export, rated part-way in headless Chromium.

Usage (after `make quickstart` and `kubetune review export .kubetune/runs/quickstart --seed 7 --limit 12`):
    .venv/bin/python hack/review-screenshot.py .kubetune/reviews/EXPORT_ID docs/images/review-page.png
Rates the first items the way a reviewer who prefers the answer matching the dataset's reference
would (by reading items.jsonl, not the key), then saves the screenshot. Needs Debian's chromium
and chromium-driver (hack/setup.sh) and selenium (the dev extra).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys


def main(export: Path, out: Path, rated: int = 5) -> None:
    items = [json.loads(line) for line in (export / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,720"):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        service=Service(shutil.which("chromedriver") or "chromedriver"), options=options
    )
    try:
        driver.get((export / "review.html").resolve().as_uri())
        driver.find_element("id", "reviewer").send_keys("ada", Keys.ENTER)
        for item in items[:rated]:
            if item["left"] == item["reference"]:
                key = Keys.ARROW_LEFT
            elif item["right"] == item["reference"]:
                key = Keys.ARROW_RIGHT
            else:
                key = "t"
            ActionChains(driver).send_keys(key).perform()
        driver.save_screenshot(str(out))
    finally:
        driver.quit()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
