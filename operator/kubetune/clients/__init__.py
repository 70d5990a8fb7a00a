"""Clients: kubetune's network access to Kubernetes, Prometheus, TGI and downloads.

Each module wraps one remote API and maps its failures to errors a user can act on; everything
else in kubetune calls these instead of opening connections itself. OCI registries are the one
other place: :mod:`kubetune.registry.oci`, inside the registry package that owns them.
"""
