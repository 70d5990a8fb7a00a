"""The review page in a real headless Chromium: rate with the keyboard (with an undo), save the
ratings file through the browser's download, import it, and get the win rate the key implies.

Also checks that the page shows no side labels, survives answers containing ``</script>``, and
refuses nothing it should accept. ``KUBETUNE_DOCS_SCREENSHOT=PATH`` saves the screenshot that
docs/review.md shows.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from kubetune.cli import main as cli
from kubetune.review import blind, stats


def wait_for_file(directory: Path, pattern: str, timeout: float = 15.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in directory.glob(pattern) if not p.name.endswith(".crdownload")]
        if done:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no {pattern} in {directory} after {timeout}s: {list(directory.iterdir())}")


def test_keyboard_rating_saved_and_imported_gives_the_win_rate(
    browser: Any,
    downloads: Path,
    run_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    card = {
        "kind": "KubetuneModelCard",
        "job": {"name": "adder"},
        "baseModel": {"uri": "tiny://gpt2"},
        "dataset": {
            "uri": "file://d.jsonl",
            "format": "instruction",
            "sha256": "0" * 64,
            "trainRows": 1,
            "validationRows": 10,
        },
        "method": "lora",
        "seed": 1,
        "hyperparameters": {},
        "versions": {},
        "metrics": [],
        "artifacts": {},
    }
    (run_dir / "model-card.json").write_text(json.dumps(card), encoding="utf-8")
    export_dir = tmp_path / "export"
    assert cli.main(["review", "export", str(run_dir), "--seed", "11", "--out", str(export_dir)]) == 0
    key = blind.Key.model_validate_json((export_dir / blind.KEY_FILE).read_text(encoding="utf-8"))
    sides = [e.tuned for e in key.items]
    assert "left" in sides and "right" in sides  # the seed puts tuned answers on both sides
    assert 0 in [e.index for e in key.items[:7]]  # the sample with markup comes up in the loop below

    browser.get((export_dir / blind.PAGE_FILE).as_uri())
    body = browser.find_element(By.TAG_NAME, "body")
    assert browser.find_element(By.ID, "count").text == "0 / 10 rated"
    assert "tuned" not in body.text.lower() and "base" not in body.text.lower()
    arrow = {"left": Keys.ARROW_LEFT, "right": Keys.ARROW_RIGHT}
    other = {"left": Keys.ARROW_RIGHT, "right": Keys.ARROW_LEFT}

    def press(key: str) -> None:
        ActionChains(browser).send_keys(key).perform()

    def shown_id() -> str:
        return str(browser.find_element(By.ID, "item-id").text).lower()  # the heading is upper-cased

    # items 1-7: the tuned side; item 8 first wrongly, undone with U, then the tuned side again
    for entry in key.items[:7]:
        assert shown_id() == entry.id
        if entry.index == 0:  # its base answer is shown as text: </script> neither ends the data nor renders
            base_side = "left" if entry.tuned == "right" else "right"
            assert "</script><b>x</b>" in browser.find_element(By.ID, base_side).text
        press(arrow[entry.tuned])
    assert browser.find_element(By.ID, "count").text == "7 / 10 rated"
    press(other[key.items[7].tuned])
    press("u")
    assert browser.find_element(By.ID, "count").text == "7 / 10 rated"
    assert shown_id() == key.items[7].id
    press(arrow[key.items[7].tuned])
    press(other[key.items[8].tuned])  # item 9: the base answer
    browser.find_element(By.ID, "reviewer").send_keys("ada", Keys.ENTER)
    if path := os.environ.get("KUBETUNE_DOCS_SCREENSHOT"):
        browser.save_screenshot(path)
    press("t")  # item 10: tie
    assert browser.find_element(By.ID, "count").text == "10 / 10 rated"
    assert browser.find_element(By.ID, "done").is_displayed()
    press("s")
    saved = wait_for_file(downloads, f"ratings-{key.export_id}*.json")
    data = json.loads(saved.read_text(encoding="utf-8"))
    assert data["exportId"] == key.export_id and data["reviewer"] == "ada" and len(data["ratings"]) == 10

    ratings_file = tmp_path / "ratings.json"
    shutil.copyfile(saved, ratings_file)
    capsys.readouterr()
    assert cli.main(["review", "import", str(ratings_file), "--export", str(export_dir), "-o", "json"]) == 0
    review = json.loads(capsys.readouterr().out)
    low, high = stats.wilson(8.5, 10)
    assert (review["wins"], review["losses"], review["ties"]) == (8, 1, 1)
    assert review["winRate"] == pytest.approx(0.85)
    assert (review["low"], review["high"]) == (pytest.approx(low, abs=1e-6), pytest.approx(high, abs=1e-6))
    assert review["reviewers"] == ["ada"]
    written = json.loads((run_dir / "human-review.json").read_text(encoding="utf-8"))
    assert written["winRate"] == pytest.approx(0.85)
    assert json.loads((run_dir / "model-card.json").read_text(encoding="utf-8"))["humanReview"]["wins"] == 8
    assert "Win rate of tuned over base: 85.0%" in (run_dir / "MODEL_CARD.md").read_text(encoding="utf-8")
