"""What the trainer and the operator exchange, declared once; both sides import it.

A training pod is a process the operator starts and reads back from outside: it sets the
pod's environment and mounts, and learns what happened from the trainer's exit code, its JSON
log lines and ``result.json``. Each of those is declared here, one module per concern:

- :mod:`.exits`: the trainer's exit codes and what each means to the operator;
- :mod:`.events`: the JSON log events (progress, phase, result), written and parsed;
- :mod:`.result`: ``result.json`` (:class:`~.result.RunResult`), also carried by the last event;
- :mod:`.pod`: environment variable names, mount paths, the plain-HTTP registry list;
- :mod:`.pricing`: the GPU price table and the one cost function (preflight, trainer, operator).

Part of the API layer: imports pydantic and the API models only, no I/O except
:meth:`RunResult.write <.result.RunResult.write>`, never the trainer or the controllers.
"""
