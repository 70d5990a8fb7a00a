"""``python -m kubetune.serving``: runs ``kubetune serve`` (same flags) without the CLI front end."""

import sys

from kubetune.serving import command

sys.exit(command.main())
