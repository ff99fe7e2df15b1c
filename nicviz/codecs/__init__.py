"""Codec registry: classical (Pillow), neural (CompressAI) and overfitted codecs.

Importing this package registers every codec: each module registers its own (adding a
codec is one module and one line here); ``base`` never imports them back.
"""

from nicviz.codecs.base import (
    RATE_BITSTREAM,
    RATE_ESTIMATED,
    Codec,
    CodecError,
    CodecUnavailable,
    QualityScale,
    get_codec,
    list_codecs,
    register_codec,
    unregister_codec,
)

__all__ = [
    "RATE_BITSTREAM",
    "RATE_ESTIMATED",
    "Codec",
    "CodecError",
    "CodecUnavailable",
    "QualityScale",
    "get_codec",
    "list_codecs",
    "register_codec",
    "unregister_codec",
]

# registration (after the names above: the codec modules import them from base)
from nicviz.codecs import classical, neural, overfitted  # noqa: E402,F401
