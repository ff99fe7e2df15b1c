"""Synthetic licence plates with known text (fonts available offline).

Used by the tests and by the dashboard's demo when no plate folder is present. A
plate is 320 x 160 px like the crops in the OpenALPR benchmark: a coloured frame, the
state name in small capitals on top, the registration in large letters, a slogan in
small print at the bottom. Text is drawn with Pillow's bundled scalable font (or
DejaVu Sans Bold when the system has it).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = ["render_plate", "random_plate_text", "write_plate_folder"]

_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",)
_SCHEMES = [((255, 255, 255), (20, 40, 120), (180, 20, 20)), ((250, 240, 200), (10, 10, 10), (30, 90, 40)),
            ((230, 240, 255), (120, 10, 10), (20, 40, 120))]
_STATES = [("CALIFORNIA", "DMV.CA.GOV"), ("TEXAS", "THE LONE STAR STATE"), ("OHIO", "BIRTHPLACE OF AVIATION"),
           ("OREGON", "PACIFIC WONDERLAND"), ("MAINE", "VACATIONLAND")]


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in _FONTS:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def random_plate_text(rng: random.Random) -> str:
    """Registration text like US plates: 3 letters + 3-4 digits or digit + 3 letters + 3 digits."""
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"  # no I, O, Q: as on most US plates
    if rng.random() < 0.5:
        return "".join(rng.choice(letters) for _ in range(3)) + "".join(rng.choice("0123456789") for _ in range(4))
    return rng.choice("123456789") + "".join(rng.choice(letters) for _ in range(3)) + "".join(
        rng.choice("0123456789") for _ in range(3))


def render_plate(text: str, seed: int = 0, size: tuple[int, int] = (320, 160), noise: float = 3.0) -> np.ndarray:
    """An RGB plate showing ``text`` (uint8 H x W x 3)."""
    rng = random.Random(seed)
    bg, fg, accent = rng.choice(_SCHEMES)
    state, slogan = rng.choice(_STATES)
    w, h = size
    im = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(im)
    d.rounded_rectangle((3, 3, w - 4, h - 4), radius=12, outline=fg, width=4)
    small = _font(max(10, h // 8))
    d.text((w / 2, h * 0.14), state, font=small, fill=accent, anchor="mm")
    d.text((w / 2, h * 0.88), slogan, font=_font(max(8, h // 12)), fill=fg, anchor="mm")
    big_size = int(h * 0.5)
    big = _font(big_size)
    while d.textlength(text, font=big) > w * 0.86 and big_size > 12:
        big_size -= 2
        big = _font(big_size)
    d.text((w / 2, h * 0.52), text, font=big, fill=fg, anchor="mm")
    im = im.filter(ImageFilter.GaussianBlur(0.6))
    arr = np.asarray(im).astype(np.float64)
    arr += np.random.default_rng(seed).normal(0, noise, arr.shape)
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


#: hard variants for a demo in which compression can visibly fail: (name, size, blur, noise)
HARD = (("small", (84, 42), 0.7, 3.0), ("blurred", (150, 75), 2.0, 3.0), ("noisy", (120, 60), 0.8, 22.0))


def write_plate_folder(folder: str | Path, count: int = 12, seed: int = 0, hard: int = 0) -> Path:
    """Write ``count`` plates as PNG plus ``labels.csv`` (file,text) into ``folder``; the
    last ``hard`` of them small, blurred or noisy in turn (:data:`HARD`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        text = random_plate_text(rng)
        name = f"gen{i:03d}.png"
        if i >= count - hard:
            kind, size, blur, noise = HARD[(i - (count - hard)) % len(HARD)]
            name = f"gen{i:03d}-{kind}.png"
            im = Image.fromarray(render_plate(text, seed=seed * 1000 + i, size=size, noise=noise))
            Image.fromarray(np.asarray(im.filter(ImageFilter.GaussianBlur(blur)))).save(folder / name)
        else:
            Image.fromarray(render_plate(text, seed=seed * 1000 + i)).save(folder / name)
        rows.append(f"{name},{text}")
    (folder / "labels.csv").write_text("file,text\n" + "\n".join(rows) + "\n")
    return folder
