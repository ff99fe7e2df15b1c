"""nicviz: how image compression changes what people and machines can see."""

from nicviz.codecs import Codec, CodecError, CodecUnavailable, get_codec, list_codecs
from nicviz.evaluate import Evaluation, evaluate
from nicviz.images import ImageError, load_image
from nicviz.metrics import compute_metrics, mae, ms_ssim, mse, psnr, ssim, vif

__version__ = "0.1.0"

__all__ = [
    "Codec",
    "CodecError",
    "CodecUnavailable",
    "Evaluation",
    "ImageError",
    "compute_metrics",
    "evaluate",
    "get_codec",
    "list_codecs",
    "load_image",
    "mae",
    "ms_ssim",
    "mse",
    "psnr",
    "ssim",
    "vif",
    "__version__",
]
