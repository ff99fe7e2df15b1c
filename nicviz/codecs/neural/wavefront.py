"""Wavefront entropy coding for models with a 5x5 masked (autoregressive) context.

CompressAI's ``compress``/``decompress`` for ``JointAutoregressiveHierarchicalPriors``
(Minnen et al., NeurIPS 2018: mbt2018) and its Cheng2020 subclasses (Cheng et al., CVPR
2020) visit the latent one position at a time in Python: H x W steps. The masked
context of position (i, j) reads only rows i-2, i-1 (columns j-2..j+2) and positions
(i, j-2), (i, j-1); every dependency has a smaller ``t = 3i + j``, so all positions of
one front ``t`` can be computed together once the fronts before it are done
(the wavefront schedule of parallel context-model decoding, e.g. Li et al., "Parallel
context modeling", and the "3i + j" front of Minnen-style models): 3(H-1) + W batched
steps instead of H x W (141 instead of 1,536 for a Kodak image at stride 16).

Encoder and decoder run the same front-by-front schedule, gather the 12 causal
neighbours of a front's positions, run the context and entropy-parameter networks on the
batch in float64 (so that tiny differences in floating-point summation order cannot
flip a quantization or scale-index decision between the two sides) and code the front's
symbols with CompressAI's rANS coder in front order. The rate model is the model's own
(the same Gaussian conditional and CDF tables), so the bitstream has the size of
CompressAI's within rounding; its symbol order differs, so the bytes differ.
"""

from __future__ import annotations

import copy
import threading
import weakref

__all__ = ["supports_wavefront", "fronts", "compress", "decompress", "KERNEL", "PAD"]

KERNEL = 5
PAD = (KERNEL - 1) // 2
#: y to z downsampling factor of these models
_Z_SCALE = 4

_heads: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def supports_wavefront(model) -> bool:
    """True for CompressAI models with a 5x5 type-A masked context (mbt2018, Cheng2020)."""
    cp = getattr(model, "context_prediction", None)
    return (cp is not None and hasattr(cp, "mask") and tuple(cp.weight.shape[-2:]) == (KERNEL, KERNEL)
            and hasattr(model, "entropy_parameters") and hasattr(model, "gaussian_conditional"))


def fronts(height: int, width: int) -> list[tuple[list[int], list[int]]]:
    """Positions (rows, cols) of each front ``t = 3i + j`` in coding order (i ascending)."""
    out = []
    for t in range(3 * (height - 1) + width):
        rows = [i for i in range(max(0, (t - width + 3) // 3), min(height - 1, t // 3) + 1) if 0 <= t - 3 * i < width]
        out.append((rows, [t - 3 * i for i in rows]))
    return out


class _Head:
    """Float64 copies of the context weights (causal taps only) and entropy-parameter net."""

    def __init__(self, model) -> None:
        import torch

        cp = model.context_prediction
        mask = cp.mask[0, 0]
        taps = torch.nonzero(mask, as_tuple=False)  # (12, 2): (dy, dx) in raster order
        w = (cp.weight.detach() * cp.mask).double()[:, :, taps[:, 0], taps[:, 1]]  # (2M, M, 12)
        self.dy, self.dx = taps[:, 0], taps[:, 1]
        self.weight = w.reshape(w.shape[0], -1).t().contiguous()  # (M*12, 2M)
        self.bias = cp.bias.detach().double()
        self.entropy_parameters = copy.deepcopy(model.entropy_parameters).double().eval()
        gc = model.gaussian_conditional
        self.scale_bound = float(gc.lower_bound_scale.bound)
        self.scale_table = gc.scale_table[:-1].double().contiguous()
        self.cdf = gc.quantized_cdf.tolist()
        self.cdf_lengths = gc.cdf_length.reshape(-1).int().tolist()
        self.offsets = gc.offset.reshape(-1).int().tolist()

    def params(self, y_pad, params, rows, cols):
        """Scales, means (P, M) and scale indexes of the positions (rows, cols)."""
        import torch

        r = rows[:, None] + self.dy[None]
        c = cols[:, None] + self.dx[None]
        nb = y_pad[:, r, c]  # (M, P, 12)
        nb = nb.permute(1, 0, 2).reshape(len(rows), -1)  # (P, M*12), same order as the weight
        ctx = torch.addmm(self.bias, nb, self.weight)  # (P, 2M)
        p = params[:, rows, cols].t()  # (P, 2M') hyper-prior parameters
        gp = self.entropy_parameters(torch.cat((p, ctx), dim=1)[:, :, None, None])[:, :, 0, 0]
        scales, means = gp.chunk(2, 1)
        scales = scales.clamp_min(self.scale_bound)
        # = GaussianConditional.build_indexes: how many table scales lie below the scale
        indexes = torch.searchsorted(self.scale_table, scales.contiguous(), right=False).int()
        return means, indexes

    def tables(self, indexes):
        """The CDF rows a front uses and its indexes renumbered into them: CompressAI's
        coder converts every row it is given on every call, so pass only these."""
        import torch

        used, local = torch.unique(indexes, sorted=True, return_inverse=True)
        rows = used.tolist()
        return (local.reshape(-1).tolist(), [self.cdf[k] for k in rows],
                [self.cdf_lengths[k] for k in rows], [self.offsets[k] for k in rows])


def _head(model) -> _Head:
    with _lock:
        h = _heads.get(model)
        if h is None:
            h = _Head(model)
            _heads[model] = h
        return h


def compress(model, x):
    """Code ``x`` (1, 3, H, W; H and W multiples of 64) with the wavefront schedule.

    Returns ``(strings, z_shape, y_hat)``: ``[y_string, z_string]`` and the dequantised
    latent (float32) that the decoder will reconstruct exactly.
    """
    import torch
    from compressai.ans import BufferedRansEncoder

    if x.shape[0] != 1:
        raise ValueError("wavefront coding takes one image at a time")
    head = _head(model)
    with torch.no_grad():
        y = model.g_a(x)
        z = model.h_a(y)
        z_strings = model.entropy_bottleneck.compress(z)
        z_hat = model.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
        params = model.h_s(z_hat)[0].double()
        m, h, w = y.shape[1:]
        y64 = y[0].double()
        y_pad = torch.zeros((m, h + 2 * PAD, w + 2 * PAD), dtype=torch.float64)
        syms, idxs = [], []
        for rows, cols in fronts(h, w):
            ri, ci = torch.tensor(rows), torch.tensor(cols)
            means, indexes = head.params(y_pad, params, ri, ci)
            sym = torch.round(y64[:, ri, ci].t() - means)
            y_pad[:, ri + PAD, ci + PAD] = (sym + means).t()
            syms.append(sym.int().reshape(-1))
            idxs.append(indexes.reshape(-1))
        # the coder buffers symbols in the order given: one call with every front in order writes the
        # same stream as a call per front, and converts each CDF row it uses once
        enc = BufferedRansEncoder()
        enc.encode_with_indexes(torch.cat(syms).tolist(), *head.tables(torch.cat(idxs)))
        y_hat = y_pad[None, :, PAD:PAD + h, PAD:PAD + w].float().contiguous(memory_format=torch.channels_last)
    return [enc.flush(), z_strings[0]], tuple(int(v) for v in z.shape[-2:]), y_hat


def decompress(model, strings: list[bytes], shape: tuple[int, int]):
    """Inverse of :func:`compress`: the reconstruction ``x_hat`` (1, 3, H, W), in [0, 1]."""
    import torch
    from compressai.ans import RansDecoder

    head = _head(model)
    with torch.no_grad():
        z_hat = model.entropy_bottleneck.decompress([strings[1]], list(shape))
        params = model.h_s(z_hat)[0].double()
        h, w = shape[0] * _Z_SCALE, shape[1] * _Z_SCALE
        m = model.context_prediction.in_channels
        y_pad = torch.zeros((m, h + 2 * PAD, w + 2 * PAD), dtype=torch.float64)
        dec = RansDecoder()
        dec.set_stream(strings[0])
        for rows, cols in fronts(h, w):
            ri, ci = torch.tensor(rows), torch.tensor(cols)
            means, indexes = head.params(y_pad, params, ri, ci)
            sym = dec.decode_stream(*head.tables(indexes))
            sym = torch.tensor(sym, dtype=torch.float64).reshape(len(rows), m)
            y_pad[:, ri + PAD, ci + PAD] = (sym + means).t()
        y_hat = y_pad[None, :, PAD:PAD + h, PAD:PAD + w].float()
        return model.g_s(y_hat.contiguous(memory_format=torch.channels_last)).clamp_(0, 1)
