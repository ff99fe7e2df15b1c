"""The one base class of nicviz's domain errors.

A :class:`NicvizError` is bad input or a failure the user can act on (an unreadable
image, an unknown codec, a corrupt bitstream, a results file of another kind): the CLI
prints it as one line and exits with 2, a sweep records it for its image and goes on,
the dashboard shows it. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["NicvizError"]


class NicvizError(ValueError):
    """Bad input or a domain failure, reported in one line."""
