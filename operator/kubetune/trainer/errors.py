"""Errors the trainer raises on purpose, each with the process exit code it maps to.

A :class:`UserError` is something the user fixes (the spec, the dataset, the budget, the
hardware asked for); the entry points print its message as one line, write it to the
termination log and exit 1, never with a traceback. Anything else escaping the trainer is a
bug. This module holds only the types; the exit codes are the trainer-operator contract's
(:mod:`kubetune.api.contract.exits`). It must not import torch.
"""

from __future__ import annotations

from kubetune.api.contract import exits


class TrainerError(Exception):
    """Base of the trainer's deliberate errors."""

    exit_code = exits.INTERNAL_ERROR


class UserError(TrainerError):
    """A problem with the spec, the data or the environment that the user can fix."""

    exit_code = exits.USER_ERROR


class PreflightFailed(UserError):
    """The preflight found problems; ``problems`` lists them (the message is the first one)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}" if problems else "preflight failed")


class Terminated(TrainerError):
    """SIGTERM (or SIGINT) arrived; a checkpoint was written at ``step``."""

    exit_code = exits.TERMINATED

    def __init__(self, step: int, checkpoint: str | None) -> None:
        self.step = step
        self.checkpoint = checkpoint
        where = f", checkpoint {checkpoint}" if checkpoint else ""
        super().__init__(f"stopped by a signal at step {step}{where}; run again to resume")
