"""Recipe experiments of the overfitted codec on a Kodak crop (the table in the README and
``nicviz/codecs/overfitted/fit.py``): fit at qualities 2/4/6, round the latents, and print
the PSNR gap to WebP at equal rate (the ARM's estimated bits; one seed). Its output of this
project's runs: ``results/overfitted/recipe-crop-experiments.jsonl``.

    python scripts/tune_overfitted_crop.py --mode soft --latent-lr 0.05 --noise-share 0.95 --iters 3000 --tag x
"""

import argparse
import io
import json
import math
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from nicviz.codecs.overfitted.codec import lambda_for
from nicviz.codecs.overfitted.fit import learning_rate
from nicviz.codecs.overfitted.model import LIMIT, Config, OverfittedModel


def crop(name, size):
    im = np.asarray(
        Image.open(
            str(__import__("nicviz.datasets", fromlist=["data_root"]).data_root() / "kodak" / f"{name}.png")
        ).convert("RGB")
    )
    h, w = im.shape[:2]
    if size <= 0:
        return im
    y0, x0 = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(im[y0 : y0 + size, x0 : x0 + size])


def webp_curve(rgb):
    pts = []
    for q in range(5, 100, 5):
        b = io.BytesIO()
        Image.fromarray(rgb).save(b, "WEBP", quality=q, method=6)
        rec = np.asarray(Image.open(io.BytesIO(b.getvalue())).convert("RGB")).astype(float)
        mse = np.mean((rec - rgb.astype(float)) ** 2)
        pts.append((8 * len(b.getvalue()) / (rgb.shape[0] * rgb.shape[1]), 10 * math.log10(255**2 / mse)))
    return sorted(pts)


def gap(pts, bpp, psnr):
    r = np.log([p[0] for p in pts])
    d = np.array([p[1] for p in pts])
    return psnr - float(np.interp(math.log(bpp), r, d))


def softround(y, t):
    # C3 (Agustsson & Theis 2020) soft rounding: floor + 1/2 + tanh((r - 1/2)/t) / (2 tanh(1/(2t)))
    m = torch.floor(y) + 0.5
    r = y - m
    return m + torch.tanh(r / t) / (2 * math.tanh(1 / (2 * t)))


#: the latent upsampling filter (``--up``)
UPSAMPLING = "bilinear"


def kumaraswamy_noise(shape, a):
    """Noise in [-1/2, 1/2] from a Kumaraswamy(a, b) distribution whose mode is 1/2 (C3, Kim
    et al., CVPR 2024): uniform at ``a = 1``, more and more peaked at the centre as ``a`` grows."""
    b = (2**a * (a - 1) + 1) / a
    u = torch.rand(shape).clamp(1e-6, 1 - 1e-6)
    return (1 - (1 - u) ** (1 / b)) ** (1 / a) - 0.5


#: the phase-1 noise (``--noise``): uniform, or Kumaraswamy with ``a`` annealed linearly
NOISE = "uniform"


def run(rgb, lam, iters, mode, latent_lr, lr, noise_share, seed=0, cfg=None, kuma=False, st_lr=0.1):
    cfg = cfg or Config()
    torch.manual_seed(seed)
    h, w = rgb.shape[:2]
    x = torch.tensor(rgb).permute(2, 0, 1)[None].float() / 255
    model = OverfittedModel(cfg, h, w, seed)
    if UPSAMPLING != "bilinear":  # an upsampling filter under test (the codec's is bilinear)
        def upsample(ys, mode=UPSAMPLING):
            f = torch.nn.functional
            u = ys[-1]
            for y in reversed(ys[:-1]):
                u = f.interpolate(u, scale_factor=2, mode=mode, align_corners=False)
                u = torch.cat((u[:, :, : y.shape[2], : y.shape[3]], y), dim=1)
            return u

        model.upsample = upsample
    lat = list(model.latents.parameters())
    ids = {id(p) for p in lat}
    net = [p for p in model.parameters() if id(p) not in ids]
    opt = torch.optim.Adam([{"params": net, "scale": 1.0}, {"params": lat, "scale": latent_lr / lr}], lr=lr)
    n1 = int(iters * noise_share)
    for it in range(iters):
        rate = learning_rate(it, iters, lr, n1, st_lr)
        for g in opt.param_groups:
            g["lr"] = rate * g["scale"]
        ys = []
        for y in model.latents:
            if it >= n1:
                ys.append(y + (torch.round(y) - y).detach())
            elif mode == "noise":
                ys.append(y + torch.rand_like(y) - 0.5)
            elif mode == "soft":
                t = 0.3 * (0.1 / 0.3) ** (it / n1)  # anneal 0.3 -> 0.1
                if NOISE == "uniform":
                    u = torch.rand_like(y) - 0.5
                else:
                    a0, a1 = (2.0, 1.0) if NOISE == "kuma21" else (1.0, 2.0)
                    u = kumaraswamy_noise(y.shape, a0 + (a1 - a0) * it / n1)
                ys.append(softround(softround(y, t) + u, t))
        xhat, bits = model(ys)
        mse = torch.mean((xhat - x) ** 2)
        loss = mse + lam * bits / (h * w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for y in model.latents:
                y.clamp_(-LIMIT + 1, LIMIT - 1)
    with torch.no_grad():
        ys = [torch.round(y) for y in model.latents]
        xhat, bits = model(ys)
        mse = float(torch.mean((xhat.clamp(0, 1) * 255).round().div(255).sub(x) ** 2))
        nz = [float((y != 0).float().mean()) for y in ys]
    return float(bits) / (h * w), -10 * math.log10(mse), nz


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="kodim23")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--q", default="2,4,6")
    ap.add_argument("--iters", type=int, default=1000)
    ap.add_argument("--mode", default="noise")
    ap.add_argument("--latent-lr", type=float, default=0.2)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--noise-share", type=float, default=0.85)
    ap.add_argument("--st-lr", type=float, default=0.1)
    ap.add_argument("--arm", type=int, default=8)
    ap.add_argument("--synth", type=int, default=16)
    ap.add_argument("--up", default="bilinear", choices=["bilinear", "bicubic"])
    ap.add_argument("--noise", default="uniform", choices=["uniform", "kuma21", "kuma12"])
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    torch.set_num_threads(1)
    UPSAMPLING = a.up
    NOISE = a.noise
    rgb = crop(a.image, a.size)
    ref = webp_curve(rgb)
    cfg = Config(arm_hidden=a.arm, synth_hidden=a.synth)
    out = []
    for q in map(float, a.q.split(",")):
        t = time.time()
        bpp, psnr, nz = run(
            rgb, lambda_for(q), a.iters, a.mode, a.latent_lr, a.lr, a.noise_share, cfg=cfg, st_lr=a.st_lr
        )
        out.append(
            dict(
                q=q,
                bpp=round(bpp, 4),
                psnr=round(psnr, 2),
                gap=round(gap(ref, bpp, psnr), 2),
                s=round(time.time() - t),
                nz=[round(v, 3) for v in nz[:3]],
            )
        )
    g = np.mean([o["gap"] for o in out])
    print(json.dumps(dict(tag=a.tag, image=a.image, mean_gap=round(g, 2), rows=out, args=vars(a))), flush=True)
