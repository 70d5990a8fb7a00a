"""The OCI client's byte paths, without a network: the digest of a blob hashed while it uploads
(each byte once, in order, even when resent) and what a blob download yields."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from typing import Any

import pytest
import requests
import urllib3

from kubetune.registry import errors, oci


def test_bytes_sent_again_after_a_dropped_connection_are_not_hashed_twice() -> None:
    running = oci._InOrderDigest()
    running.update(0, b"abcd")
    running.update(4, b"ef")
    running.update(2, b"cdef")  # the registry had only 2 bytes: the chunk is resent from there
    running.update(6, b"gh")
    running.update(0, b"abcdefgh")  # a restarted upload reads everything again
    assert running.offset == 8
    assert running.digest() == "sha256:" + hashlib.sha256(b"abcdefgh").hexdigest()


def test_a_large_upload_resumed_mid_chunk_gets_the_digest_of_the_file() -> None:
    data = os.urandom(20 << 20)
    running = oci._InOrderDigest()
    block = 1 << 20
    for offset in range(0, 12 << 20, block):
        running.update(offset, data[offset : offset + block])
    for offset in range(5 << 20, len(data), block):  # resumed from 5 MiB
        running.update(offset, data[offset : offset + block])
    assert running.digest() == "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_gap_in_the_uploaded_bytes_is_refused_rather_than_hashed_over() -> None:
    running = oci._InOrderDigest()
    running.update(0, b"ab")
    with pytest.raises(RuntimeError, match="skipped bytes 2-4"):
        running.update(5, b"f")


def _blob_response(body: bytes, headers: dict[str, str]) -> requests.Response:
    resp = requests.Response()
    resp.status_code = 200
    resp.headers.update(headers)
    resp.raw = urllib3.HTTPResponse(
        body=io.BytesIO(body), headers=headers, preload_content=False, decode_content=False
    )
    return resp


@pytest.mark.parametrize("coding", ["identity", "gzip"])
def test_a_blob_comes_back_as_stored_whether_or_not_the_server_applied_a_content_coding(
    coding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = os.urandom(3 << 20)
    body = gzip.compress(stored) if coding == "gzip" else stored

    def fake_request(method: str, path: str, **kwargs: Any) -> requests.Response:
        return _blob_response(body, {"Content-Encoding": coding, "Content-Length": str(len(body))})

    client = oci.Client("registry.example")
    monkeypatch.setattr(client, "_request", fake_request)
    with client.open_blob("team/bot", "sha256:" + "0" * 64) as chunks:
        blocks = list(chunks)
    assert b"".join(blocks) == stored


def test_a_blob_cut_short_is_a_network_error_naming_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_request(method: str, path: str, **kwargs: Any) -> requests.Response:
        return _blob_response(b"x" * 1000, {"Content-Length": "5000"})

    client = oci.Client("registry.example")
    monkeypatch.setattr(client, "_request", fake_request)
    with (
        pytest.raises(errors.Unreachable, match=r"registry\.example"),
        client.open_blob("team/bot", "sha256:" + "0" * 64) as chunks,
    ):
        list(chunks)
