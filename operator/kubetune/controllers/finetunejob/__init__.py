"""The FineTuneJob controller: ``handlers`` (kopf decorators) call ``reconcile``, which reads the
children (``observe``), asks the pure ``decide`` and creates what ``builders`` (pure manifests)
return; ``metrics`` holds its series."""
