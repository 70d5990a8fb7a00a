"""``python -m kubetune.testing.nodeagent --config agent.yaml``: run the test node agent.

The harness starts this in its own process group; SIGTERM (or Ctrl-C) stops every pod the
agent runs, then the agent itself. Logs are JSON lines on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from pathlib import Path
from types import FrameType

from kubetune import logs
from kubetune.testing.nodeagent.agent import NodeAgent
from kubetune.testing.nodeagent.config import AgentConfig


def _exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubetune.testing.nodeagent", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="agent YAML written by the harness")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    signal.signal(signal.SIGTERM, _exit)
    agent = NodeAgent(AgentConfig.load(args.config))
    with contextlib.suppress(KeyboardInterrupt):
        agent.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
