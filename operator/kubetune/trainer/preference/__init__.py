"""Preference tuning (DPO, IPO, ORPO) inside the trainer's one loop.

:mod:`.data` tokenises prompt/chosen/rejected rows into :class:`~.data.Pair` objects;
:mod:`.logps` scores answers and holds the objectives; :mod:`.reference` computes the base
model's log-probabilities once before training (cached beside the checkpoints);
:mod:`.scoring` gives the held-out metrics; :mod:`.checks` the preflight's findings.
"""
