"""Preference tuning settings: ``spec.preference`` of a FineTuneJob (DPO, IPO, ORPO).

A preference dataset holds a prompt and two answers, ``chosen`` and ``rejected``; these
settings say which objective learns from them and how strongly. Kept apart from
:mod:`~kubetune.api.v1alpha1.finetunejob` so that the block, its metrics and its rules live in
one place. Pure pydantic; no I/O.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kubetune.api.v1alpha1.base import KubeModel

PreferenceLoss = Literal["sigmoid", "ipo", "orpo"]
# methods whose reference model is the base model with the adapter switched off (or, for full,
# the weights before training): prompt- and prefix-tuning change the input itself
PREFERENCE_METHODS: tuple[str, ...] = ("lora", "qlora", "dora", "ia3", "full")
REFERENCE_FREE: frozenset[str] = frozenset({"orpo"})


class PreferenceSpec(KubeModel):
    """How a preference dataset (prompt, chosen, rejected) is learned."""

    loss: PreferenceLoss = Field(
        default="sigmoid",
        description=(
            "Objective. sigmoid: DPO (Rafailov et al. 2023), -log sigmoid(beta * ((log pi(chosen) - "
            "log ref(chosen)) - (log pi(rejected) - log ref(rejected)))), with the base model as the "
            "reference. ipo: IPO (Azar et al. 2023), the squared distance of the per-token log-ratio "
            "margin from 1/(2*beta). orpo: ORPO (Hong et al. 2024), reference-free: the chosen "
            "answer's language-model loss plus beta times an odds-ratio loss. Default: sigmoid."
        ),
    )
    beta: float = Field(
        default=0.1,
        gt=0.0,
        le=100.0,
        description=(
            "Strength of the preference term. For sigmoid and ipo, how far the tuned model may move "
            "from the reference (smaller moves further); for orpo, the weight of the odds-ratio "
            "loss (lambda in the paper). Typical: 0.1. Default: 0.1."
        ),
    )

    @property
    def needs_reference(self) -> bool:
        """Whether training needs the reference model's log-probabilities."""
        return self.loss not in REFERENCE_FREE
