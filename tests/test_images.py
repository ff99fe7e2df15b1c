"""Loading rules and bad-input refusals of nicviz.images."""

from __future__ import annotations

import numpy as np
import pytest
from imagefiles import encode, png16_rgb, png_bomb, write
from PIL import Image

from nicviz.images import ImageError, load_image


def test_png_roundtrip_is_exact(tmp_path, astronaut):
    p = write(tmp_path / "a.png", encode(Image.fromarray(astronaut), "PNG"))
    out = load_image(p)
    assert out.dtype == np.uint8 and out.shape == astronaut.shape
    assert np.array_equal(out, astronaut)


@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("empty.png", b"", "empty file"),
        ("notes.png", b"this is a text file, not an image\n" * 10, "not an image"),
        ("bomb.png", png_bomb(30000, 30000), "decompression bomb"),
    ],
)
def test_refused_with_one_line_naming_file(tmp_path, name, data, reason):
    p = write(tmp_path / name, data)
    with pytest.raises(ImageError) as info:
        load_image(p)
    msg = str(info.value)
    assert name in msg and reason in msg and "\n" not in msg


@pytest.mark.parametrize("fmt,suffix", [("PNG", "png"), ("JPEG", "jpg")])
def test_truncated_files_refused(tmp_path, astronaut, fmt, suffix):
    data = encode(Image.fromarray(astronaut), fmt)
    p = write(tmp_path / f"cut.{suffix}", data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated|corrupt"):
        load_image(p)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.png")


def test_16bit_rgb_keeps_high_byte(tmp_path):
    a = np.array([[[0x80FF, 0x0101, 0xFFFF], [0x7F80, 0, 1]]], dtype=np.uint16)
    out = load_image(write(tmp_path / "deep.png", png16_rgb(a)))
    assert out.dtype == np.uint8
    assert out.tolist() == [[[128, 1, 255], [127, 0, 0]]]


def test_16bit_gray(tmp_path):
    g = np.array([[0x80FF, 65535, 0]], dtype=np.uint16)
    out = load_image(write(tmp_path / "g16.png", encode(Image.fromarray(g), "PNG")))
    assert out.shape == (1, 3, 3)
    assert out[0, :, 0].tolist() == [128, 255, 0]
    assert np.all(out[..., 0] == out[..., 2])


def test_cmyk_jpeg_converted_to_rgb(tmp_path):
    im = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red in CMYK
    out = load_image(write(tmp_path / "cmyk.jpg", encode(im, "JPEG", quality=95)))
    assert out.shape == (32, 32, 3)
    r, g, b = out[16, 16].astype(int)
    assert r > 230 and g < 30 and b < 30


def test_rgba_composited_over_white(tmp_path):
    a = np.zeros((4, 4, 4), np.uint8)
    a[:, :2] = (10, 20, 30, 255)  # opaque
    a[:, 2:] = (10, 20, 30, 0)  # fully transparent
    out = load_image(write(tmp_path / "rgba.png", encode(Image.fromarray(a, "RGBA"), "PNG")))
    assert out[0, 0].tolist() == [10, 20, 30]
    assert out[0, 3].tolist() == [255, 255, 255]


def test_palette_png_with_and_without_transparency(tmp_path, chelsea):
    pal = Image.fromarray(chelsea).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    out = load_image(write(tmp_path / "pal.png", encode(pal, "PNG")))
    assert np.array_equal(out, np.asarray(pal.convert("RGB")))
    pal.info["transparency"] = int(np.asarray(pal)[0, 0])
    out_t = load_image(write(tmp_path / "palt.png", encode(pal, "PNG", transparency=pal.info["transparency"])))
    assert out_t[0, 0].tolist() == [255, 255, 255]


def test_grayscale_replicated(tmp_path, chelsea):
    gray = Image.fromarray(chelsea).convert("L")
    out = load_image(write(tmp_path / "gray.png", encode(gray, "PNG")))
    assert out.shape == chelsea.shape
    assert np.array_equal(out[..., 0], np.asarray(gray)) and np.array_equal(out[..., 1], out[..., 2])


def test_exif_orientation_applied(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = 255  # left half white
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    out = load_image(write(tmp_path / "rot.jpg", encode(im, "JPEG", quality=95, exif=exif.tobytes())))
    assert out.shape == (40, 20, 3)
    # after a clockwise turn the white left half is on top
    assert out[:15].mean() > 200 and out[25:].mean() < 50


def test_tiny_image_loads(tmp_path):
    a = np.full((5, 7, 3), 77, np.uint8)
    out = load_image(write(tmp_path / "tiny.png", encode(Image.fromarray(a), "PNG")))
    assert out.shape == (5, 7, 3)


def test_bytes_source_named_upload():
    with pytest.raises(ImageError, match="<upload>"):
        load_image(b"garbage")
