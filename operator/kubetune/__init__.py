"""kubetune: fine-tune and ship models on Kubernetes.

The package root holds only the version. Subpackages: ``api`` (the declared API), ``crdgen``
(CRDs generated from it), ``cli`` (the ``kubetune`` command), and later ``controllers``,
``clients``, ``registry``, ``trainer`` and ``serving`` (see docs/architecture.md).
"""

__version__ = "0.1.0"
