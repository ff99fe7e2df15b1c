"""A per-image overfitted codec (COOL-CHIC family): the encoder fits a small decoder and a
latent pyramid to each image and sends both; nothing is pretrained.

- ``model``: the decoder (latent pyramid, ARM, upsampling, synthesis), trainable and exact forms;
- ``fit``: per-image training (rate + lambda x MSE, noise then straight-through rounding);
- ``entropy``: latents through CompressAI's rANS coder, front by front; parameters in exp-Golomb codes;
- ``stream``: the bitstream (header, parameters, latents, CRC-32);
- ``codec``: the registered codecs ``overfitted-fast``, ``overfitted``, ``overfitted-slow``.
"""

from nicviz.codecs.overfitted.codec import PRESETS, OverfittedCodec, lambda_for, register

__all__ = ["OverfittedCodec", "PRESETS", "lambda_for", "register"]

register()
