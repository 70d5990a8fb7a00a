"""The trainer's process exit codes: how a training or preflight pod says how it ended.

The operator reads them from the pod's terminated container state (``restartPolicy:
OnFailure`` would otherwise retry an answer that will not change), the distributed launcher
keeps them across torchrun, and ``result.json`` repeats the code with its outcome. Plain
integers, so they cross every process boundary unchanged.
"""

from __future__ import annotations

from typing import Final

OK: Final = 0
USER_ERROR: Final = 1  # the spec, the data, the budget or the hardware asked for: the user fixes it
GATE_NOT_MET: Final = 2  # trained and exported, but the evaluation gate failed: not registered
INTERNAL_ERROR: Final = 3  # a bug in the trainer (a traceback is in the log)
TERMINATED: Final = 143  # 128 + SIGTERM: a checkpoint was written, run again to resume

MEANING: Final[dict[int, str]] = {
    OK: "ok",
    USER_ERROR: "user/data error",
    GATE_NOT_MET: "gate not met (artifacts kept, not registered)",
    INTERNAL_ERROR: "internal error",
    TERMINATED: "stopped by SIGTERM after a checkpoint (rerun to resume)",
}


def summary() -> str:
    """One line listing every code, for help texts (``0 ok, 1 user/data error, ...``)."""
    return ", ".join(f"{code} {text}" for code, text in MEANING.items())
