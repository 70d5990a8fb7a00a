"""The FineTuneJob controller: ``builders`` (pure manifests), later ``reconcile`` and ``handlers``."""
