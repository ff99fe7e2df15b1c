"""Full-reference image-quality metrics on 8-bit RGB images, one function per metric,
each registered (:mod:`nicviz.metrics.registry`) with its label, unit and direction.

Colour metrics are computed over all three channels: MSE/MAE/PSNR pool all samples;
SSIM, MS-SSIM and VIF are computed per channel and averaged, as CompressAI reports
``*-rgb`` results. Results list them in registration order: PSNR, SSIM, MS-SSIM, VIF,
MSE, MAE.
"""

from nicviz.metrics.pixel import abs_error_map, mae, mse, psnr
from nicviz.metrics.registry import (
    METRIC_LABELS,
    METRICS,
    Metric,
    compute_metrics,
    curve_metrics,
    get_metric,
    metric_names,
    register_metric,
    unregister_metric,
)
from nicviz.metrics.structural import ms_ssim, ssim, ssim_map
from nicviz.metrics.vif import vif

__all__ = ["mse", "mae", "psnr", "ssim", "ms_ssim", "vif", "ssim_map", "abs_error_map", "compute_metrics",
           "METRICS", "METRIC_LABELS", "Metric", "register_metric", "unregister_metric", "get_metric",
           "metric_names", "curve_metrics"]
