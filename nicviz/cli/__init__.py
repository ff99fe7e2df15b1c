"""The ``nicviz`` command line (also ``python -m nicviz``): one module per group of
subcommands, every one a ``cmd_*(args)`` that returns the exit code; :func:`main` parses,
runs and turns every domain error into one line (``nicviz: error: ...``, exit 2)."""

from nicviz.cli.parser import build_parser, main

__all__ = ["main", "build_parser"]
