"""Codec registry: classical (Pillow) and neural (CompressAI) codecs."""

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
