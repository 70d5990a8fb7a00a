"""kubetune's TGI-compatible runtime (``kubetune serve``): transformers + peft behind TGI's HTTP API.

Modules, from the wire inwards: :mod:`command` (the process from its flags), :mod:`config`
(flags), :mod:`app` and :mod:`chat` (routes) with :mod:`runtime` (what they share),
:mod:`protocol` (wire formats), :mod:`validation` (TGI's request rules), :mod:`inference` (one
request's trip), :mod:`batcher` (scheduling), :mod:`engine` and :mod:`sampling` (the model),
:mod:`metrics`, :mod:`faults`, :mod:`quantize`, :mod:`server` (the process). Importing this
package imports nothing heavy.
"""
