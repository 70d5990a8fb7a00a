"""Errors a user can cause while talking to an adapter registry, each with what to do next.

Every error here names the registry or reference it concerns and ends with a hint, so the CLI can
print ``str(err)`` as one line and exit 1. This module is a leaf: it imports nothing from kubetune,
because both the HTTP client (:mod:`kubetune.registry.oci`) and the rest of ``kubetune.registry`` raise these. It must
never receive a password or token: callers pass names, hosts and digests only.
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base class: a problem the user can fix. ``str()`` is one line: message, then the hint."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message}; {hint}" if hint else message)


class InvalidReference(RegistryError):
    """A reference string that is neither ``oci://host/repo[:tag][@digest]`` nor a layout path."""


class InvalidArtifact(RegistryError):
    """A source directory or a manifest that cannot be (or is not) a kubetune artifact."""


class AuthenticationFailed(RegistryError):
    """The registry rejected the credentials (or asked for some and none were configured)."""


class AccessDenied(RegistryError):
    """The credentials were accepted but do not grant the requested action."""


class NotFound(RegistryError):
    """The repository, tag, digest or layout does not exist."""


class Unreachable(RegistryError):
    """The registry could not be reached: DNS, refused connection, timeout, TLS or plain HTTP."""


class IntegrityError(RegistryError):
    """Content whose digest or size differs from what its descriptor promised."""


class Unsupported(RegistryError):
    """The registry refuses an operation it does not implement (e.g. deleting tags)."""


class RegistryFailure(RegistryError):
    """Any other error answer from the registry, with the registry's own error code."""
