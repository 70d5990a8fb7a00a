"""``python -m kubetune.serving``: runs ``kubetune serve`` (same flags) without the CLI front end."""

import sys

from kubetune.cli import serve

sys.exit(serve.main())
