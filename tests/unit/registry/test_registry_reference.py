"""Parsing and formatting artifact references (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetune.registry import errors, reference
from kubetune.registry.reference import LayoutRef, RemoteRef

DIGEST = "sha256:" + "ab" * 32


def test_remote_reference_with_port_tag_and_digest_is_split_into_parts() -> None:
    ref = reference.parse(f"oci://127.0.0.1:5000/team/support-bot:v1@{DIGEST}")
    assert ref == RemoteRef(host="127.0.0.1:5000", repository="team/support-bot", tag="v1", digest=DIGEST)
    assert ref.target == DIGEST
    assert str(ref) == f"oci://127.0.0.1:5000/team/support-bot:v1@{DIGEST}"


def test_remote_reference_without_tag_targets_latest() -> None:
    ref = reference.parse("oci://registry.example.com/team/adapter")
    assert isinstance(ref, RemoteRef)
    assert ref.tag is None and ref.digest is None
    assert ref.target == "latest"


def test_port_is_not_mistaken_for_a_tag() -> None:
    ref = reference.parse("oci://localhost:5000/adapter")
    assert isinstance(ref, RemoteRef)
    assert (ref.host, ref.repository, ref.tag) == ("localhost:5000", "adapter", None)


def test_docker_hub_names_get_the_library_prefix_and_the_api_host() -> None:
    ref = reference.parse("oci://docker.io/busybox:1")
    assert isinstance(ref, RemoteRef)
    assert ref.repository == "library/busybox"
    assert ref.api_host == "registry-1.docker.io"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("oci://host/Team/adapter:v1", "invalid repository"),
        ("oci://host/adapter:-bad", "invalid tag"),
        ("oci://host/adapter@sha256:1234", "invalid digest"),
        ("oci://host", "no repository"),
        ("oci:///adapter", "invalid registry host"),
        ("https://host/adapter", "unsupported reference scheme"),
        ("", "invalid reference"),
    ],
)
def test_bad_references_are_rejected_with_the_reason(text: str, fragment: str) -> None:
    with pytest.raises(errors.InvalidReference) as info:
        reference.parse(text)
    assert fragment in str(info.value)
    assert "write it as" in str(info.value) or ";" in str(info.value)


def test_bare_registry_host_is_accepted_only_for_listing() -> None:
    ref = reference.parse("oci://127.0.0.1:5000", allow_bare_host=True)
    assert ref == RemoteRef(host="127.0.0.1:5000", repository="")
    assert str(ref) == "oci://127.0.0.1:5000"


def test_layout_path_takes_the_tag_after_the_last_colon_of_the_last_component() -> None:
    ref = reference.parse("./out/layout:v2")
    assert ref == LayoutRef(path=Path("out/layout"), tag="v2")


def test_layout_path_with_colon_in_a_parent_directory_keeps_the_directory() -> None:
    ref = reference.parse("/data/run:3/layout")
    assert ref == LayoutRef(path=Path("/data/run:3/layout"))


def test_layout_path_can_be_pinned_by_digest() -> None:
    ref = reference.parse(f"/srv/layout:v1@{DIGEST}")
    assert ref == LayoutRef(path=Path("/srv/layout"), tag="v1", digest=DIGEST)
    assert str(ref.with_tag(None)) == f"/srv/layout@{DIGEST}"


def test_local_registry_directory_defaults_to_dot_kubetune(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBETUNE_REGISTRY_DIR", raising=False)
    assert reference.default_root() == Path(".kubetune/registry")
    monkeypatch.setenv("KUBETUNE_REGISTRY_DIR", "/var/lib/kubetune")
    assert reference.local("team/a", "v1") == LayoutRef(path=Path("/var/lib/kubetune/team/a"), tag="v1")


def test_local_reference_rejects_bad_repository_names() -> None:
    with pytest.raises(errors.InvalidReference, match="invalid repository name"):
        reference.local("../escape")
