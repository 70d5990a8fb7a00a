"""Datasets the trainer fetches itself: an ``https://`` URL (here a real HTTP server on
loopback, asking for a bearer token like a private bucket's gateway), checked into the lineage
by SHA-256; and the one-line errors for a refused token, a missing file, ``s3://`` and a
``configmap://`` outside a cluster. No half-downloaded file is left behind."""

from __future__ import annotations

import hashlib
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kubetune.api.contract import pod
from kubetune.trainer import preflight
from kubetune.trainer import spec as job_spec

from .conftest import memorisable_rows

TOKEN = "s3cr3t"
BODY = "".join(json.dumps(r) + "\n" for r in memorisable_rows()).encode()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_error(401)
            return
        if not self.path.startswith("/data/train.jsonl"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An HTTPS server (a token is never sent over plain http://) that requests trusts through
    REQUESTS_CA_BUNDLE, with a certificate for 127.0.0.1 from a throw-away CA."""
    from kubetune.testing import pki

    keys = pki.create(tmp_path / "pki")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(keys.ca_crt))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(keys.serving_crt), str(keys.serving_key))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def sources_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "sources"
    monkeypatch.setenv(pod.SOURCES_DIR, str(where))
    monkeypatch.delenv(pod.CONFIGMAP_ROOT_ENV, raising=False)
    return where


def _preflight(write_spec: Any, uri: str) -> Any:
    spec = write_spec(spec={"dataset": {"uri": uri, "format": "instruction", "validationSplit": 0.25}})
    return preflight.run(job_spec.load(spec)).report


def test_an_https_dataset_with_a_token_is_fetched_and_pinned_by_sha256(
    write_spec: Any, server: str, monkeypatch: pytest.MonkeyPatch, sources_dir: Path
) -> None:
    monkeypatch.setenv(pod.DATASET_TOKEN, TOKEN)
    report = _preflight(write_spec, f"{server}/data/train.jsonl?X-Amz-Signature=abc")
    assert report.passed, report.errors
    assert report.rows == len(memorisable_rows())
    assert report.dataset_sha256 == hashlib.sha256(BODY).hexdigest()
    assert [p.name for p in sources_dir.rglob("*") if p.is_file()] == ["train.jsonl"]


@pytest.mark.parametrize(
    ("path", "token", "expected"),
    [
        ("/data/train.jsonl", "wrong", "HTTP 401"),
        ("/data/missing.jsonl", TOKEN, "HTTP 404"),
    ],
)
def test_a_refused_or_missing_download_is_one_error_naming_the_field(
    write_spec: Any,
    server: str,
    monkeypatch: pytest.MonkeyPatch,
    sources_dir: Path,
    path: str,
    token: str,
    expected: str,
) -> None:
    monkeypatch.setenv(pod.DATASET_TOKEN, token)
    report = _preflight(write_spec, f"{server}{path}?X-Amz-Signature=topsecret")
    assert len(report.errors) == 1, report.errors
    error = report.errors[0]
    assert error.startswith(f"spec.dataset.uri: {expected} from {server}{path}")
    assert "topsecret" not in error  # a presigned URL's signature never reaches logs or status
    assert not [p for p in sources_dir.rglob("*") if p.is_file()]  # no partial file


def test_s3_says_to_use_a_presigned_url_or_a_claim(write_spec: Any) -> None:
    report = _preflight(write_spec, "s3://bucket/train.jsonl")
    assert len(report.errors) == 1
    assert "spec.dataset.uri s3://bucket/train.jsonl" in report.errors[0]
    assert "presigned https:// URL" in report.errors[0] and "pvc://" in report.errors[0]


def test_configmap_dataset_outside_a_cluster_says_where_it_works(write_spec: Any) -> None:
    report = _preflight(write_spec, "configmap://data/train.jsonl")
    assert report.errors == [
        "spec.dataset.uri configmap://data/train.jsonl: configmap:// datasets are mounted by the "
        "operator in a cluster; in local mode use a local file"
    ]


def test_configmap_dataset_is_read_where_the_operator_mounts_it(
    write_spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cm" / "data").mkdir(parents=True)
    (tmp_path / "cm" / "data" / "train.jsonl").write_bytes(BODY)
    monkeypatch.setenv(pod.CONFIGMAP_ROOT_ENV, str(tmp_path / "cm"))
    report = _preflight(write_spec, "configmap://data/train.jsonl")
    assert report.passed, report.errors
    assert report.dataset_sha256 == hashlib.sha256(BODY).hexdigest()


def test_the_lineage_of_a_presigned_dataset_keeps_no_signature(write_spec: Any) -> None:
    from kubetune.trainer import card

    job = job_spec.load(
        write_spec(spec={"dataset": {"uri": "https://b.example/k/t.jsonl?X-Amz-Signature=abc"}})
    )
    lineage = card.lineage(
        job="t",
        namespace=None,
        spec=job.spec,
        base_revision=None,
        dataset_sha256="0" * 64,
        dataset_format="instruction",
        train_rows=1,
        validation_rows=0,
    )
    assert lineage["dataset"]["uri"] == "https://b.example/k/t.jsonl"
