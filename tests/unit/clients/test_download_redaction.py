"""A presigned URL's query is a credential: what the download client shows keeps only the
scheme, host, port and path."""

from __future__ import annotations

import pytest

from kubetune.clients import download


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://b.s3.amazonaws.com/k/train.jsonl?X-Amz-Signature=abc&X-Amz-Credential=x",
            "https://b.s3.amazonaws.com/k/train.jsonl",
        ),
        ("https://user:pass@host:8443/data.jsonl#frag", "https://host:8443/data.jsonl"),
        ("http://127.0.0.1:9000/d.jsonl", "http://127.0.0.1:9000/d.jsonl"),
    ],
)
def test_shown_url_has_no_query_fragment_or_userinfo(url: str, shown: str) -> None:
    assert download.redact(url) == shown
