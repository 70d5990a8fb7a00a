"""Write the quickstart dataset: support tickets routed to a team, as instruction JSONL.

Each row asks to route a ticket; the answer names the team and what happens next. Tickets
are built from per-team phrases in random combinations, so the held-out split has tickets
the model never saw but can learn to route. Deterministic (seeded); run it again to get the
same file: ``python docs/examples/quickstart/make_dataset.py``.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

TEAMS = {
    "billing": (
        [
            "I was charged twice for my subscription",
            "my invoice shows the wrong amount",
            "I need a refund for last month",
            "the payment failed on my credit card",
            "please update the VAT number on my invoice",
            "why did my bill go up this month",
            "I want to change my billing address",
            "the receipt for my order is missing",
        ],
        "Billing will check your account and reply within one business day.",
    ),
    "technical": (
        [
            "the app crashes when I open settings",
            "I get an error 500 when I upload a file",
            "the page loads forever and then times out",
            "sync stopped working on my laptop",
            "the API returns an invalid token error",
            "notifications are not arriving on my phone",
            "the export button does nothing",
            "search results are empty for every query",
        ],
        "An engineer will look at the logs and get back to you today.",
    ),
    "account": (
        [
            "I cannot log in to my account",
            "I forgot my password and the reset mail never came",
            "please delete my account and my data",
            "I want to change the email address of my account",
            "two factor authentication locked me out",
            "how do I add a second user to my team",
            "my username is shown wrong on my profile",
            "I need to transfer ownership of the workspace",
        ],
        "The account team will verify your identity and help you right away.",
    ),
    "shipping": (
        [
            "my parcel has not arrived yet",
            "the tracking number does not work",
            "the box arrived damaged",
            "I received the wrong item in my order",
            "can you ship to a different address",
            "the courier left my package at the wrong door",
            "delivery was promised for Monday but nothing came",
            "I want to return an item I ordered",
        ],
        "Shipping will contact the carrier and send you an update within two days.",
    ),
}
OPENERS = ["Hi,", "Hello,", "Good morning,", "Hey team,", "Dear support,", ""]
CLOSERS = ["Thanks.", "Please help.", "Can you fix this?", "Regards.", "This is urgent.", ""]
WHEN = ["since yesterday", "this morning", "again", "for a week now", "", "today"]
INSTRUCTIONS = [
    "Route this support ticket to the right team.",
    "Which team should handle this ticket?",
]


def ticket(rng: random.Random, phrase: str) -> str:
    parts = [
        rng.choice(OPENERS),
        phrase + (" " + rng.choice(WHEN) if rng.random() < 0.7 else "").rstrip() + ".",
        rng.choice(CLOSERS),
    ]
    return " ".join(p for p in parts if p).strip()


def rows(count: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    names = sorted(TEAMS)
    while len(out) < count:
        team = names[len(out) % len(names)]
        phrases, reply = TEAMS[team]
        text = ticket(rng, rng.choice(phrases))
        if text in seen:
            continue
        seen.add(text)
        out.append(
            {"instruction": rng.choice(INSTRUCTIONS), "input": text, "output": f"Team: {team}. {reply}"}
        )
    rng.shuffle(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("train.jsonl"))
    parser.add_argument("--rows", type=int, default=320)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with args.out.open("w", encoding="utf-8") as fh:
        for row in rows(args.rows, args.seed):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {args.rows} rows to {args.out}")


if __name__ == "__main__":
    main()
