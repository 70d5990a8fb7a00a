"""The kubetune API, declared once as pydantic models (one subpackage per version).

Everything else (CRDs, ``kubectl explain`` text, docs reference, ``kubetune validate``) is
generated from or checked by these models. This package imports nothing heavier than pydantic:
no kopf, no kubernetes client, no torch.
"""
