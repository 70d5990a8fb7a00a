"""A minimal client for an OpenAI-compatible ``/v1/completions`` route (greedy, no streaming).

Used by the adapter verifier sidecar against vLLM, which selects an adapter by ``"model": NAME``
and answers 404 for a name it does not serve. The full-featured client is ``openai``; this one
keeps the sidecar free of it. Errors become :class:`~kubetune.clients.tgi.TGIError` (the
verifier's one error type) with the server's one-line message.
"""

from __future__ import annotations

import requests

from kubetune.clients.tgi import TGIError


def complete(url: str, prompt: str, *, model: str, max_tokens: int = 16, timeout: float = 30) -> str:
    """Greedy completion of ``prompt`` by the served model (or adapter) called ``model``."""
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0}
    try:
        resp = requests.post(f"{url}/v1/completions", json=body, timeout=timeout)
    except requests.RequestException as exc:
        raise TGIError(f"{url} unreachable: {type(exc).__name__}") from None
    if resp.status_code != 200:
        try:
            error = resp.json().get("error", resp.text)
            message = str(error.get("message", error) if isinstance(error, dict) else error)
        except ValueError:
            message = resp.text[:200]
        raise TGIError(f"{url} answered {resp.status_code}: {message}")
    return str(resp.json()["choices"][0]["text"])
