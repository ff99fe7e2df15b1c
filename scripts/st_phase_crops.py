"""The overfitted codec's straight-through phase, measured: real encodes of centre crops of
Kodak images with the phase moving the latents (``st_latent_scale`` 1, the recipe before
2026-12-03), without the phase (``noise_share`` 1) and with it fitting only the networks
(``st_latent_scale`` 0, the recipe since); bpp of the real bitstream, PSNR, and the fit's
objective ``MSE + lambda x bpp``. Each encode is checked to decode bit for bit.

    python scripts/st_phase_crops.py --out results/overfitted/st-phase-crops.csv
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

#: (image, quality, iterations, noise_share, st_latent_scale)
GRID = ([(img, q, 3000, ns, st) for img, q in (("kodim12", 2.5), ("kodim05", 2.5), ("kodim23", 4.0))
         for ns, st in ((0.95, 1.0), (1.0, 1.0), (0.95, 0.0))]
        + [(img, 5.5, 3000, ns, 1.0) for img in ("kodim12", "kodim05") for ns in (0.95, 1.0)])


def main(argv: list[str] | None = None) -> int:
    import pandas as pd
    import torch

    import nicviz.codecs.overfitted.codec as codec
    from nicviz.datasets import resolve_dataset
    from nicviz.images import load_image
    from nicviz.results import meta_path, run_metadata, write_json_atomic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="side of the centre crop")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ds = resolve_dataset("kodak")
    rows = []
    for image, q, iterations, ns, st in GRID:
        rgb = load_image(ds.root / f"{image}.png")
        h, w, s = rgb.shape[0], rgb.shape[1], args.size
        rgb = np.ascontiguousarray(rgb[h // 2 - s // 2: h // 2 + s // 2, w // 2 - s // 2: w // 2 + s // 2])
        codec.RECIPE.update(noise_share=ns, st_latent_scale=st)
        c = codec.OverfittedCodec("overfitted", iterations=iterations)
        t = time.perf_counter()
        data = c.encode(rgb, q)
        secs = time.perf_counter() - t
        rec = c.encoder_reconstruction()
        assert np.array_equal(c.decode(data), rec), "decode differs from the encoder's reconstruction"
        mse = float(np.mean((rec.astype(np.float64) - rgb) ** 2)) / 255.0 ** 2
        bpp = 8 * len(data) / (s * s)
        rows.append({"image": image, "crop": s, "quality": q, "iterations": iterations, "noise_share": ns,
                     "st_latent_scale": st, "encode_s": round(secs, 1), "bpp": bpp, "psnr": -10 * math.log10(mse),
                     "objective": mse + codec.lambda_for(q) * bpp})
        print(rows[-1], flush=True)
    out = Path(args.out)
    pd.DataFrame(rows).to_csv(out, index=False)
    write_json_atomic(run_metadata(dataset="kodak", seed=0, command=sys.argv, rows=len(rows),
                                   task="overfitted-st-phase"), meta_path(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
