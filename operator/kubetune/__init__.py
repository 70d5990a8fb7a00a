"""kubetune: fine-tune and ship models on Kubernetes.

The package root holds only the version (and ``logs``, the JSON log setup). Subpackages, in
layers that import only downwards (import-linter enforces them; see docs/architecture.md):
``api`` (the declared API and the trainer-operator contract) at the bottom; ``clients`` (network
access) and ``registry`` (OCI artifacts); ``controllers``, ``trainer``, ``serving`` and
``crdgen``, which never import each other; ``cli`` (the ``kubetune`` command); and ``testing``
(the test harness), which product code never imports.
"""

__version__ = "0.1.0"
