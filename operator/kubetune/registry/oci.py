"""HTTP client for the OCI distribution API (Harbor, ECR, GHCR, Zot, CNCF distribution, ...).

One :class:`Client` per registry host: it speaks ``/v2/`` over ``requests``, answers auth
challenges (anonymous, basic, and bearer tokens from the registry's token service, including
OAuth2 refresh tokens), honours a custom CA or plain HTTP, uploads blobs monolithically or in
chunks (resuming a chunk after a dropped connection; hashing a blob of unknown digest as it goes
out, so the file is read once) and maps failures to
:mod:`kubetune.registry.errors` with the host in every message. It knows nothing of artifacts or
manifests' contents, and must never log or raise a header, password or token. The registry
package's only network access: its other modules reach a registry through this one.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import hashlib
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import requests

import kubetune
from kubetune import logs
from kubetune.registry import auth, errors

log = logging.getLogger(__name__)

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_LINK_NEXT = re.compile(r"<([^>]+)>\s*;\s*rel=\"?next\"?")
_RETRYABLE_STATUS = {429, 502, 503, 504}
READ_BLOCK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Transport:
    """How to reach a registry: ``insecure`` means plain HTTP; ``ca_file`` trusts a private CA."""

    insecure: bool = False
    ca_file: Path | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 300.0
    retries: int = 3


class _InOrderDigest:
    """SHA-256 of a file uploaded front to back, where a chunk may be sent again after a dropped
    connection: each byte offset is hashed the first time it is read and skipped when re-read.
    Re-read bytes that changed meanwhile make the registry's digest differ from this one, so the
    final ``PUT ?digest=`` is refused rather than storing a blob under the wrong digest."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.offset = 0

    def update(self, offset: int, data: bytes) -> None:
        if offset > self.offset:
            raise RuntimeError(f"upload skipped bytes {self.offset}-{offset - 1} of the source")
        end = offset + len(data)
        if end > self.offset:
            self._hash.update(memoryview(data)[self.offset - offset :])
            self.offset = end

    def digest(self) -> str:
        return f"sha256:{self._hash.hexdigest()}"


class _Reader:
    """A file slice that reports progress; ``read`` hands out large blocks to keep Python cheap
    and, when ``digest`` is given, feeds each block to it on the way out."""

    def __init__(
        self,
        handle: BinaryIO,
        offset: int,
        length: int,
        progress: Callable[[int], None],
        digest: _InOrderDigest | None,
    ) -> None:
        self._handle, self._offset, self._left = handle, offset, length
        self._progress, self._digest = progress, digest

    def __len__(self) -> int:
        return self._left

    def read(self, _size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        data = self._handle.read(min(self._left, READ_BLOCK))
        if not data:
            raise OSError("source file shrank while it was being uploaded")
        if self._digest is not None:
            self._digest.update(self._offset, data)
        self._offset += len(data)
        self._left -= len(data)
        self._progress(len(data))
        return data


class _Counter:
    """Forwards byte counts to a progress callback and can rewind when an upload restarts."""

    def __init__(self, progress: Callable[[int], None]) -> None:
        self.progress, self.done = progress, 0

    def __call__(self, n: int) -> None:
        self.done += n
        self.progress(n)

    def rewind(self, offset: int) -> None:
        self(offset - self.done)


class Client:
    """The distribution API of one registry host, authenticated as ``credentials``."""

    def __init__(
        self, host: str, credentials: auth.Credentials = auth.ANONYMOUS, transport: Transport | None = None
    ) -> None:
        self.host = host
        self.credentials = credentials
        self.transport = transport or Transport()
        self.base = f"{'http' if self.transport.insecure else 'https'}://{host}"
        self._session = requests.Session()
        self._session.headers["User-Agent"] = f"kubetune/{kubetune.__version__}"
        if self.transport.ca_file is not None and not self.transport.ca_file.is_file():
            raise errors.Unreachable(
                f"CA file {self.transport.ca_file} for registry {host} does not exist", "pass a PEM bundle"
            )
        # Passed per request: requests lets $REQUESTS_CA_BUNDLE override a Session-level verify.
        self._verify: str | bool = str(self.transport.ca_file) if self.transport.ca_file else True
        self._tokens: dict[str, str] = {}
        self._basic = False

    def close(self) -> None:
        self._session.close()

    # --- API ---------------------------------------------------------------------------------

    def ping(self) -> None:
        """Check reachability and credentials (``GET /v2/``)."""
        self._request("GET", "/v2/", scope="", ok=(200,))

    def blob_exists(self, repo: str, digest: str) -> bool:
        resp = self._request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=_pull(repo), ok=(200, 404))
        return resp.status_code == 200

    @contextlib.contextmanager
    def open_blob(self, repo: str, digest: str) -> Iterator[Iterator[bytes]]:
        """Stream a blob's bytes (unverified: the caller hashes them)."""
        resp = self._request("GET", f"/v2/{repo}/blobs/{digest}", scope=_pull(repo), ok=(200,), stream=True)
        try:
            yield resp.iter_content(READ_BLOCK)
        except requests.RequestException as exc:
            raise self._network_error(exc) from None
        finally:
            resp.close()

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Cross-repository mount; False when the registry wants the bytes uploaded instead."""
        resp = self._request(
            "POST",
            f"/v2/{repo}/blobs/uploads/",
            scope=f"{_push(repo)} {_pull(from_repo)}",
            ok=(201, 202),
            params={"mount": digest, "from": from_repo},
        )
        return resp.status_code == 201

    def upload_blob(
        self,
        repo: str,
        digest: str | None,
        size: int,
        path: Path,
        progress: Callable[[int], None] = lambda _n: None,
        chunk_size: int = 64 << 20,
    ) -> str:
        """Upload ``size`` bytes of ``path`` as a blob and return its digest.

        With a known ``digest``: one PUT up to ``chunk_size``, else PATCH chunks. With ``digest``
        None the SHA-256 is computed from the bytes as they are sent (POST, PATCH chunks, then
        ``PUT ?digest=``; only the last request needs it), so a large file is read once instead
        of hashed first and read again. Either way the registry checks the digest on the final
        PUT and refuses a mismatch. A dropped connection resumes the chunk where the registry
        says it stopped; when the registry has discarded the session instead (distribution 2.x
        does), the upload restarts."""
        scope = _push(repo)
        counted = _Counter(progress)
        running = None if digest else _InOrderDigest()
        for attempt in range(self.transport.retries + 1):
            try:
                resp = self._upload_once(repo, digest, size, path, scope, chunk_size, counted, running)
                break
            except (errors.Unreachable, errors.NotFound, errors.RegistryFailure) as exc:
                if attempt >= self.transport.retries:
                    raise
                counted.rewind(0)
                log.info("restarting upload", extra=logs.fields(registry=self.host, reason=exc.message))
                time.sleep(0.5 * (attempt + 1))
        final = digest or self._final_digest(running, size)
        stored = resp.headers.get("Docker-Content-Digest")
        if stored and stored != final:
            raise errors.IntegrityError(
                f"registry {self.host} stored {stored} for blob {final} in {repo}", "retry the push"
            )
        return final

    def _final_digest(self, running: _InOrderDigest | None, size: int) -> str:
        if running is None or running.offset != size:
            raise errors.IntegrityError(
                f"upload to registry {self.host} hashed {running.offset if running else 0} of {size} bytes",
                "the source changed while uploading; retry the push",
            )
        return running.digest()

    def _upload_once(
        self,
        repo: str,
        digest: str | None,
        size: int,
        path: Path,
        scope: str,
        chunk_size: int,
        progress: _Counter,
        running: _InOrderDigest | None,
    ) -> requests.Response:
        start = self._request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope, ok=(202,))
        location = self._location(start)
        with path.open("rb") as handle:
            if digest and size <= chunk_size:
                return self._request(
                    "PUT",
                    _with_param(location, "digest", digest),
                    scope=scope,
                    ok=(201,),
                    headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                    body=functools.partial(_rewound, handle, 0, size, progress, None),
                )
            location = self._upload_chunks(location, scope, handle, size, chunk_size, progress, running)
        return self._request(
            "PUT",
            _with_param(location, "digest", digest or self._final_digest(running, size)),
            scope=scope,
            ok=(201,),
            headers={"Content-Length": "0"},
        )

    def _upload_chunks(
        self,
        location: str,
        scope: str,
        handle: BinaryIO,
        size: int,
        chunk_size: int,
        progress: _Counter,
        running: _InOrderDigest | None,
    ) -> str:
        offset, failures = 0, 0
        while offset < size:
            length = min(chunk_size, size - offset)
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Length": str(length),
                "Content-Range": f"{offset}-{offset + length - 1}",
            }
            body = functools.partial(_rewound, handle, offset, length, progress, running)
            try:
                resp = self._request("PATCH", location, scope=scope, ok=(202,), headers=headers, body=body)
            except errors.Unreachable:
                failures += 1
                if failures > self.transport.retries:
                    raise
                # The connection dropped mid-chunk: ask how much arrived and resume from there.
                status = self._request("GET", location, scope=scope, ok=(204,))
                offset = _range_end(status.headers.get("Range")) + 1
                progress.rewind(offset)
                location = self._location(status, default=location)
                log.info("resuming upload", extra=logs.fields(registry=self.host, offset=offset))
                continue
            location = self._location(resp)
            offset = _range_end(resp.headers.get("Range"), default=offset + length - 1) + 1
        return location

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str, str | None]:
        """``(bytes, media type, Docker-Content-Digest or None)`` of a manifest by tag or digest."""
        resp = self._request(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            scope=_pull(repo),
            ok=(200,),
            headers={"Accept": MANIFEST_ACCEPT},
        )
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        return resp.content, media_type, resp.headers.get("Docker-Content-Digest")

    def head_manifest(self, repo: str, reference: str) -> str | None:
        """The digest a tag points at, or None when the tag does not exist."""
        resp = self._request(
            "HEAD",
            f"/v2/{repo}/manifests/{reference}",
            scope=_pull(repo),
            ok=(200, 404),
            headers={"Accept": MANIFEST_ACCEPT},
        )
        return resp.headers.get("Docker-Content-Digest") if resp.status_code == 200 else None

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> str | None:
        resp = self._request(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            scope=_push(repo),
            ok=(201,),
            headers={"Content-Type": media_type},
            body=lambda: data,
        )
        return resp.headers.get("Docker-Content-Digest")

    def delete_manifest(self, repo: str, reference: str) -> None:
        self._request("DELETE", f"/v2/{repo}/manifests/{reference}", scope=_delete(repo), ok=(202, 200))

    def tags(self, repo: str) -> list[str]:
        return self._paginate(f"/v2/{repo}/tags/list", "tags", _pull(repo))

    def catalog(self) -> list[str]:
        return self._paginate("/v2/_catalog", "repositories", "registry:catalog:*")

    # --- plumbing ----------------------------------------------------------------------------

    def _paginate(self, path: str, key: str, scope: str) -> list[str]:
        out: list[str] = []
        url: str | None = path
        params: dict[str, str] | None = {"n": "1000"}
        while url:
            resp = self._request("GET", url, scope=scope, ok=(200,), params=params)
            out.extend(resp.json().get(key) or [])
            match = _LINK_NEXT.search(resp.headers.get("Link", ""))
            url, params = (match.group(1), None) if match else (None, None)
        return out

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else urllib.parse.urljoin(self.base, path)

    def _location(self, resp: requests.Response, default: str | None = None) -> str:
        location = resp.headers.get("Location") or default
        if not location:
            raise errors.RegistryFailure(f"registry {self.host} started an upload without a Location", "")
        return self._url(location)

    def _request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        ok: tuple[int, ...],
        headers: dict[str, str] | None = None,
        body: Callable[[], Any] | None = None,
        params: dict[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        url = self._url(path)
        # Credentials go only to this registry: an absolute Location or Link naming another
        # origin (an upload redirected to object storage, or a hostile registry) gets none.
        ours = _origin(url) == _origin(self.base)
        attempt, authed = 0, False
        while True:
            attempt += 1
            sent = dict(headers or {})
            if ours:
                sent.update(self._auth_header(scope))
            try:
                resp = self._session.request(
                    method,
                    url,
                    headers=sent,
                    data=body() if body else None,
                    params=params,
                    stream=stream,
                    timeout=(self.transport.connect_timeout, self.transport.read_timeout),
                    allow_redirects=method in ("GET", "HEAD"),
                    verify=self._verify,
                )
            except requests.RequestException as exc:
                if method in ("GET", "HEAD") and attempt <= self.transport.retries:
                    time.sleep(0.5 * attempt)
                    continue
                raise self._network_error(exc) from None
            log.debug(
                "registry request",
                extra=logs.fields(
                    registry=self.host,
                    method=method,
                    path=urllib.parse.urlsplit(url).path,
                    status=resp.status_code,
                ),
            )
            if resp.status_code == 401 and not authed and ours:
                authed = True
                self._answer_challenge(resp, scope)
                resp.close()
                continue
            if (
                resp.status_code in _RETRYABLE_STATUS
                and attempt <= self.transport.retries
                and (method in ("GET", "HEAD") or body is None)
            ):
                resp.close()
                time.sleep(0.5 * attempt)
                continue
            if resp.status_code in ok:
                return resp
            raise self._status_error(resp, method, url)

    def _auth_header(self, scope: str) -> dict[str, str]:
        creds = self.credentials
        if scope in self._tokens:
            return {"Authorization": f"Bearer {self._tokens[scope]}"}
        if self._basic and creds.username and creds.password is not None:
            pair = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
            return {"Authorization": f"Basic {pair}"}
        return {}

    def _answer_challenge(self, resp: requests.Response, scope: str) -> None:
        header = resp.headers.get("WWW-Authenticate", "")
        kind = header.split(" ", 1)[0].lower()
        params = dict(_CHALLENGE_PARAM.findall(header))
        creds = self.credentials
        if kind == "basic":
            if creds.token or creds.identity_token:
                raise errors.AuthenticationFailed(
                    f"registry {self.host} asks for a username and password, but a token is configured "
                    f"({creds.describe()})",
                    "use --username with --password-stdin, or KUBETUNE_REGISTRY_USERNAME/PASSWORD with _HOST",
                )
            if not (creds.username and creds.password is not None):
                raise self._auth_error(needs=True)
            self._basic = True
        elif kind == "bearer" and params.get("realm"):
            self._tokens[scope] = self._fetch_token(params, scope)
        else:
            raise self._auth_error(needs=creds.anonymous)

    def _fetch_token(self, challenge: dict[str, str], scope: str) -> str:
        creds = self.credentials
        if creds.token:
            return creds.token
        query = {"service": challenge.get("service", "")}
        scopes = [s for s in (scope or challenge.get("scope", "")).split(" ") if s]
        try:
            if creds.identity_token:
                resp = self._session.post(
                    challenge["realm"],
                    data={
                        **query,
                        "grant_type": "refresh_token",
                        "refresh_token": creds.identity_token,
                        "client_id": "kubetune",
                        "scope": " ".join(scopes),
                    },
                    timeout=(self.transport.connect_timeout, 60),
                    verify=self._verify,
                )
            else:
                basic = (creds.username, creds.password or "") if creds.username else None
                resp = self._session.get(
                    challenge["realm"],
                    params=[*query.items(), *(("scope", s) for s in scopes)],
                    auth=basic,
                    timeout=(self.transport.connect_timeout, 60),
                    verify=self._verify,
                )
        except requests.RequestException as exc:
            raise self._network_error(exc, what="token service") from None
        if resp.status_code in (401, 403):
            raise self._auth_error(needs=creds.anonymous)
        if resp.status_code != 200:
            raise errors.RegistryFailure(
                f"token service of registry {self.host} answered HTTP {resp.status_code}", "retry later"
            )
        body = resp.json()
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise errors.RegistryFailure(f"token service of registry {self.host} returned no token", "")
        return token

    def _auth_error(self, needs: bool) -> errors.RegistryError:
        if needs:
            return errors.AuthenticationFailed(
                f"registry {self.host} requires credentials and none are configured",
                "pass --username/--password-stdin, set KUBETUNE_REGISTRY_USERNAME/PASSWORD and _HOST, "
                "or log in with docker/skopeo login",
            )
        return errors.AuthenticationFailed(
            f"registry {self.host} rejected the credentials ({self.credentials.describe()})",
            "check the username and password, or the token's validity",
        )

    def _network_error(self, exc: requests.RequestException, what: str = "registry") -> errors.RegistryError:
        if isinstance(exc, requests.exceptions.SSLError):
            return errors.Unreachable(
                f"TLS with {what} {self.host} failed (untrusted certificate, or a plain-HTTP server)",
                "pass --ca-file with the registry's CA, or --insecure for a plain-HTTP registry",
            )
        if isinstance(exc, requests.exceptions.Timeout):
            return errors.Unreachable(f"{what} {self.host} timed out", "check the network and retry")
        reason = type(exc).__name__
        if "refused" in str(exc).lower():
            reason = "connection refused"
        elif "name or service not known" in str(exc).lower() or "nodename nor servname" in str(exc).lower():
            reason = "unknown host"
        return errors.Unreachable(
            f"cannot reach {what} {self.host} ({reason})",
            "check the host and port, that the registry is running, and --insecure for plain HTTP",
        )

    def _status_error(self, resp: requests.Response, method: str, url: str) -> errors.RegistryError:
        code, message = "", ""
        try:
            first = (resp.json().get("errors") or [{}])[0]
            code, message = str(first.get("code", "")), str(first.get("message", ""))
        except (ValueError, AttributeError, IndexError):
            pass
        path = urllib.parse.urlsplit(url).path
        what = (
            f"registry {self.host} answered {resp.status_code}{' ' + code if code else ''} to {method} {path}"
        )
        if message:
            what += f": {message}"
        if resp.status_code == 401:
            return self._auth_error(needs=self.credentials.anonymous)
        if resp.status_code == 400 and self.transport.insecure and b"HTTPS server" in resp.content[:200]:
            return errors.Unreachable(
                f"registry {self.host} speaks HTTPS but was called over plain HTTP",
                "drop --insecure (and pass --ca-file if its certificate is private)",
            )
        if resp.status_code == 403:
            return errors.AccessDenied(what, f"ask for access ({self.credentials.describe()} is not allowed)")
        if resp.status_code == 404:
            return errors.NotFound(what, "check the repository, tag or digest")
        if resp.status_code == 405 or code == "UNSUPPORTED":
            return errors.Unsupported(
                what, "the registry does not allow this operation (deletion may be off)"
            )
        if code in ("DIGEST_INVALID", "SIZE_INVALID", "BLOB_UPLOAD_INVALID"):
            return errors.IntegrityError(what, "the source changed while uploading; retry the push")
        return errors.RegistryFailure(what, "retry, or check the registry's logs")


def _pull(repo: str) -> str:
    return f"repository:{repo}:pull"


def _push(repo: str) -> str:
    return f"repository:{repo}:pull,push"


def _delete(repo: str) -> str:
    return f"repository:{repo}:delete"


def _with_param(url: str, key: str, value: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [*urllib.parse.parse_qsl(parts.query, keep_blank_values=True), (key, value)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _range_end(header: str | None, default: int = -1) -> int:
    if not header:
        return default
    try:
        return int(header.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return default


def _rewound(
    handle: BinaryIO,
    offset: int,
    length: int,
    progress: Callable[[int], None],
    running: _InOrderDigest | None,
) -> _Reader:
    handle.seek(offset)
    return _Reader(handle, offset, length, progress, running)


def _origin(url: str) -> tuple[str, str]:
    """(scheme, host[:port]) in lowercase, as browsers and docker compare origins."""
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()
