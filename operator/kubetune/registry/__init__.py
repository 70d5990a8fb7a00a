"""OCI adapter registry: kubetune artifacts in any OCI registry, or in a local OCI image layout.

The public surface, for the CLI, the trainer and the controllers:

- :func:`push_directory` (src_dir, ref, config) -> digest-pinned reference string
- :func:`pull`, :func:`copy`, :func:`resolve`, :func:`show`, :func:`list_tags`,
  :func:`list_repositories`, :func:`delete`
- :class:`ArtifactConfig` (the lineage config), :class:`Options` (TLS, plain HTTP, credentials),
  :class:`RegistryError` (base of every error a user can cause), :func:`default_root` (local dir).

Modules: ``reference`` (parsing), ``artifact`` (the format), ``layout`` (OCI layout on disk),
``auth`` (credentials), ``store`` (remote or layout behind one interface), ``transfer`` (push,
pull, copy), ``catalog`` (look and delete), ``progress``, and ``oci``: the HTTP client, this package's
only network access (the registry owns its network access, as :mod:`kubetune.clients` does
for Kubernetes, Prometheus, TGI and downloads).
"""

from kubetune.registry.artifact import ArtifactConfig
from kubetune.registry.auth import Credentials
from kubetune.registry.catalog import check, delete, list_repositories, list_tags, resolve, show
from kubetune.registry.errors import RegistryError
from kubetune.registry.reference import default_root, parse
from kubetune.registry.store import Options
from kubetune.registry.transfer import copy, pull, push_directory, verify_pulled

__all__ = [
    "ArtifactConfig",
    "Credentials",
    "Options",
    "RegistryError",
    "check",
    "copy",
    "default_root",
    "delete",
    "list_repositories",
    "list_tags",
    "parse",
    "pull",
    "push_directory",
    "resolve",
    "show",
    "verify_pulled",
]
