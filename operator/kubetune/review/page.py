"""The static review page: one HTML file with the items inlined, rated with the keyboard.

The template (``templates/review.html``) carries its CSS and JavaScript inline and a
Content-Security-Policy that forbids any network fetch, so the page works from a file:// URL,
offline, and sends nothing anywhere. Keys: left arrow / 1 left is better, right arrow / 2 right
is better, down arrow / T / 3 tie, U / Backspace undo, S save (downloads ``ratings-<export
id>.json``); progress is kept in the browser's localStorage between visits. The page holds the
items only, never the order key. Pure: :func:`render` returns text.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from importlib import resources

from kubetune.review.blind import Item, Key


def template() -> str:
    return resources.files("kubetune.review").joinpath("templates/review.html").read_text(encoding="utf-8")


def render(items: Sequence[Item], key: Key, title: str | None = None) -> str:
    """The page for ``items``; ``title`` defaults to the export id."""
    data = {"exportId": key.export_id, "items": [i.model_dump() for i in items]}
    # inside <script> only "</" could end the block early; \u003c keeps the JSON equal
    body = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
    page = template().replace("{{TITLE}}", html.escape(title or f"kubetune review {key.export_id}"))
    return page.replace("{{DATA}}", body)
