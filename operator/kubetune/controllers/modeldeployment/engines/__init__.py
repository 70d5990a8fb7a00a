"""The seam between a ModelDeployment and the inference server its pods run.

Everything that differs between engines sits behind :class:`Engine`: the server container's
command, arguments and environment, its probes, how the verifier sidecar asks for an adapter
(TGI's ``/generate`` with ``adapter_id``, or the OpenAI API with ``"model": NAME``) and the PromQL
of the built-in canary checks. Routing, revisions, verification and analysis stay shared
(:mod:`..builders`, :mod:`..canary`, :mod:`..analysis`) and know engines only through this
interface. One module per engine, same names in each, registered in :data:`ENGINES`. Pure.
"""

from __future__ import annotations

from kubetune.controllers.modeldeployment.engines import tgi, vllm
from kubetune.controllers.modeldeployment.engines.base import Engine, Served

__all__ = ["ENGINES", "Engine", "Served", "get"]

ENGINES: dict[str, Engine] = {"tgi": tgi.ENGINE, "vllm": vllm.ENGINE}


def get(name: str) -> Engine:
    """The engine called ``name`` (``spec.runtime.engine``)."""
    try:
        return ENGINES[name]
    except KeyError:
        raise ValueError(f"spec.runtime.engine {name!r} is not one of {sorted(ENGINES)}") from None
