"""CRD generation: the API models -> structural OpenAPI v3 -> ``crds/<plural>.kubetune.io.yaml``.

The same files are written into the Helm chart (``charts/kubetune/crds/``).

``python -m kubetune.crdgen`` writes the files; ``--check`` compares instead and exits non-zero
naming each drifted file. :mod:`.schema` turns a pydantic JSON schema into a structural one;
:mod:`.generate` assembles the CustomResourceDefinition objects. Nothing here talks to a
cluster.
"""
