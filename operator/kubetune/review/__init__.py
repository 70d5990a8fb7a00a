"""Blind human review of a run's held-out samples: export, the rating page, and the tally.

:mod:`~kubetune.review.blind` turns base/tuned sample rows into a blind export (items in a
seeded random order, each with a seeded random side for the tuned answer) and its order key;
:mod:`~kubetune.review.page` renders the static, self-contained HTML page a reviewer rates
with the keyboard; :mod:`~kubetune.review.ratings` checks a saved ratings file against the key
and counts it; :mod:`~kubetune.review.stats` holds the win rate and its interval. Pure: no
network, no Kubernetes, no torch; the CLI (``kubetune review``) reads and writes the files.
"""
