"""Controllers: one package per kind (``handlers.py`` with kopf decorators only, ``reconcile.py``,
``builders.py`` with pure manifest builders). Never imports torch, transformers, peft or the
trainer; talks to Kubernetes only through ``kubetune.clients``.
"""
