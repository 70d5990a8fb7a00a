"""The ``kubetune`` command: one module per subcommand, wired together in :mod:`.main`.

Each subcommand module exposes ``register(subparsers)``; user mistakes are reported as one
line and exit code 1, never as a traceback.
"""
