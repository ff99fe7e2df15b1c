"""What the classifier's training does to a batch: compression swaps from the bank,
augmentation (alike for an image and its twin), and the two extra losses (AugMix
consistency, distillation). Used by :mod:`nicviz.training.classifier`."""

from __future__ import annotations

from collections import Counter

import numpy as np

from nicviz.tasks.classify.models import PREPROCESS

__all__ = ["js_consistency", "distill_kl"]


def _compress_swap(batch: np.ndarray, idx: np.ndarray, bank, prob: float, rng: np.random.Generator,
                   size: int, used: Counter | None = None) -> np.ndarray:
    """Replace each image, with probability ``prob``, by a random bank reconstruction of it."""
    from PIL import Image

    if bank is None or prob <= 0:
        return batch
    batch = batch.copy()
    for k, i in enumerate(idx):
        if rng.random() < prob:
            rgb, key = bank.sample(int(i), rng)
            batch[k] = np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR))
            if used is not None:
                used[key] += 1
    return batch


def _augment_one(img, size: int, fx: bool, fy: bool, rot: int, crop: tuple[int, int, int],
                 gain: float, shift: float):
    import torch
    import torch.nn.functional as F

    if fx:
        img = img.flip(2)
    if fy:
        img = img.flip(1)
    img = torch.rot90(img, rot, dims=(1, 2))
    y0, x0, c = crop
    img = F.interpolate(img[None, :, y0:y0 + c, x0:x0 + c], size=(size, size), mode="bilinear",
                        align_corners=False)[0]
    return ((img - img.mean()) * gain + img.mean() + shift).clamp(0, 255)


def _augment(batch: np.ndarray, rng: np.random.Generator, size: int, twin: np.ndarray | None = None):
    """Flips, 90-degree turns, a random resized crop and brightness/contrast jitter.

    With ``twin`` (the same images, e.g. compressed) each twin gets its image's very
    augmentation, and the result is the originals followed by the twins.
    """
    import torch

    x = torch.from_numpy(batch.astype(np.float32)).permute(0, 3, 1, 2)
    xt = None if twin is None else torch.from_numpy(twin.astype(np.float32)).permute(0, 3, 1, 2)
    out, out_t = [], []
    for k in range(len(x)):
        fx, fy, rot = rng.random() < 0.5, rng.random() < 0.5, int(rng.integers(4))
        c = max(8, int(round(size * float(rng.uniform(0.75, 1.0)))))
        crop = (int(rng.integers(size - c + 1)), int(rng.integers(size - c + 1)), c)
        params = (fx, fy, rot, crop, float(rng.uniform(0.9, 1.1)), float(rng.uniform(-12, 12)))
        out.append(_augment_one(x[k], size, *params))
        if xt is not None:
            out_t.append(_augment_one(xt[k], size, *params))
    return PREPROCESS["effnet-lite"](torch.stack(out + out_t))


def js_consistency(logits_a, logits_b):
    """Jensen-Shannon divergence between two batches of predictions (AugMix, ICLR 2020), mean over images."""
    import torch
    import torch.nn.functional as F

    pa, pb = F.softmax(logits_a, 1), F.softmax(logits_b, 1)
    log_m = torch.clamp((pa + pb) / 2, 1e-7, 1).log()
    return (F.kl_div(log_m, pa, reduction="batchmean") + F.kl_div(log_m, pb, reduction="batchmean")) / 2


def distill_kl(student_logits, teacher_logits):
    """KL(teacher || student) between two batches of predictions, mean over images (Hinton et al., 2015; T = 1)."""
    import torch.nn.functional as F

    return F.kl_div(F.log_softmax(student_logits, 1), F.log_softmax(teacher_logits, 1), reduction="batchmean",
                    log_target=True)
