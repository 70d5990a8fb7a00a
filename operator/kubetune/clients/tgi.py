"""A minimal client for a TGI-compatible server's ``/generate`` route (greedy, no streaming).

Used by the adapter verifier sidecar and by tests; the full-featured clients are TGI's own
``text-generation`` package and ``openai``. Errors become :class:`TGIError` with the server's
one-line message.
"""

from __future__ import annotations

import requests


class TGIError(Exception):
    """The server refused or could not be reached; the message says which and why."""


def generate(
    url: str, prompt: str, *, adapter_id: str | None = None, max_new_tokens: int = 16, timeout: float = 30
) -> str:
    """Greedy completion of ``prompt``, with ``adapter_id`` when given."""
    parameters: dict[str, object] = {"max_new_tokens": max_new_tokens, "do_sample": False}
    if adapter_id is not None:
        parameters["adapter_id"] = adapter_id
    try:
        resp = requests.post(
            f"{url}/generate", json={"inputs": prompt, "parameters": parameters}, timeout=timeout
        )
    except requests.RequestException as exc:
        raise TGIError(f"{url} unreachable: {type(exc).__name__}") from None
    if resp.status_code != 200:
        try:
            message = str(resp.json().get("error", resp.text))
        except ValueError:
            message = resp.text[:200]
        raise TGIError(f"{url} answered {resp.status_code}: {message}")
    return str(resp.json()["generated_text"])
