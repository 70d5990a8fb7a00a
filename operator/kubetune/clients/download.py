"""Plain HTTP(S) downloads of training inputs (a dataset at an ``https://`` URL, e.g. a
presigned object-store URL), streamed to disk atomically with their SHA-256.

A failure is a :class:`DownloadError` with the status and what to check; the caller adds which
spec field named the URL. A partial file never takes the destination's name. Knows nothing of
datasets or specs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
import urllib.parse
from pathlib import Path

import requests

from kubetune import logs

log = logging.getLogger(__name__)
CHUNK = 1 << 20
LOG_EVERY_SECONDS = 5.0


class DownloadError(Exception):
    """The URL could not be fetched; the message says why and what to check."""


def redact(url: str) -> str:
    """``url`` without its query and credentials (a presigned URL's signature is a secret)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _why(status: int) -> str:
    if status in (401, 403):
        return "the server refused the credentials; check the token in the secret the spec names"
    if status == 404:
        return "no such file; check the URL"
    if status >= 500:
        return "the server failed; try again later"
    return "check the URL"


def download(url: str, dest: Path, *, token: str | None = None, timeout: float = 60.0) -> str:
    """Fetch ``url`` into ``dest`` (replaced atomically); returns the hex SHA-256 of the bytes.

    ``token`` is sent as ``Authorization: Bearer``, only over https://: a plain ``http://`` URL
    with a token is refused before connecting, and a redirect to another host, port or scheme
    drops the header (requests' ``rebuild_auth``; tests/unit/clients checks it against a real
    server). Progress goes to the log every few seconds.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    shown = redact(url)
    if token and not url.startswith("https://"):
        raise DownloadError(
            f"{shown}: refusing to send the secret's token over plain http://; use an https:// URL"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as resp:
            if resp.status_code != 200:
                raise DownloadError(f"HTTP {resp.status_code} from {shown}: {_why(resp.status_code)}")
            total = int(resp.headers.get("Content-Length") or 0) or None
            done, last = 0, time.monotonic()
            with os.fdopen(fd, "wb") as out:
                fd = -1
                for block in resp.iter_content(CHUNK):
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    if time.monotonic() - last >= LOG_EVERY_SECONDS:
                        last = time.monotonic()
                        log.info("downloading", extra=logs.fields(url=shown, bytes=done, total=total))
                out.flush()
                os.fsync(out.fileno())
            if total is not None and done != total:
                raise DownloadError(
                    f"{shown}: the connection closed after {done} of {total} bytes; try again"
                )
        os.replace(tmp, dest)
    except requests.RequestException as exc:
        # the exception text may repeat the whole URL, query included: name only its type
        raise DownloadError(f"cannot fetch {shown}: {type(exc).__name__}") from None
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    log.info("downloaded", extra=logs.fields(url=shown, path=str(dest), sha256=digest.hexdigest()))
    return digest.hexdigest()
