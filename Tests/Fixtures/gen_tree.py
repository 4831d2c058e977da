"""Builds the Keras-style image tree used by the golden fixtures.

Writes Tests/Fixtures/keras/tree/{train,validation}/... and Tests/Fixtures/keras/linked-target/...
Every image is synthesised from a seeded numpy generator, so a rerun with the same Pillow writes the
same bytes. See README.md for the purpose of each file.
"""
import io
import os
import shutil
import struct
import sys
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
KERAS_DIR = os.path.join(HERE, "keras")
TREE = os.path.join(KERAS_DIR, "tree")
LINKED_TARGET = os.path.join(KERAS_DIR, "linked-target")


def pattern(width, height, seed):
    """A smooth RGB picture with edges and a little noise (uint8, HWC)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = rng.uniform(0, 255, size=3)
    gx, gy = rng.uniform(-4, 4, size=3), rng.uniform(-4, 4, size=3)
    img = base + gx * xx[..., None] + gy * yy[..., None]
    cx, cy, r = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height, min(width, height) * 0.3
    disk = ((xx - cx) ** 2 + (yy - cy) ** 2) < r * r
    img[disk] = 255 - img[disk]
    img += rng.normal(0, 6, size=img.shape)
    return np.clip(np.rint(img) % 256, 0, 255).astype(np.uint8)


def rgb(width, height, seed):
    return Image.fromarray(pattern(width, height, seed), "RGB")


def save_jpeg(img, path, **kw):
    kw.setdefault("quality", 90)
    img.save(path, "JPEG", **kw)


def png_chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def write_raw_png(path, array, color_type, bit_depth, extra_chunks=()):
    """Writes a non-interlaced PNG by hand (filter 0 on every row).

    array: uint8 or uint16 [H, W] (gray) or [H, W, 3] (RGB); 16-bit samples are stored big-endian.
    """
    height, width = array.shape[:2]
    if bit_depth == 16:
        raw = array.astype(">u2").tobytes()
    else:
        raw = array.astype(np.uint8).tobytes()
    row_bytes = len(raw) // height
    scan = b"".join(b"\x00" + raw[i * row_bytes:(i + 1) * row_bytes] for i in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    for kind, data in extra_chunks:
        out += png_chunk(kind, data)
    out += png_chunk(b"IDAT", zlib.compress(scan, 9)) + png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(out)


def jpeg_bytes(img, **kw):
    buf = io.BytesIO()
    save_jpeg(img, buf, **kw)
    return buf.getvalue()


def build():
    for path in (TREE, LINKED_TARGET):
        if os.path.islink(path) or os.path.isfile(path):
            os.remove(path)
        elif os.path.isdir(path):
            shutil.rmtree(path)
    train = os.path.join(TREE, "train")
    val = os.path.join(TREE, "validation")

    def d(*parts):
        p = os.path.join(*parts)
        os.makedirs(p, exist_ok=True)
        return p

    # ---- train/.hidden : a hidden class directory (Keras counts it as a class)
    save_jpeg(rgb(33, 29, 1), os.path.join(d(train, ".hidden"), "h.jpg"), subsampling=2)

    # ---- train/Zebra : uppercase sorts before lowercase
    z = d(train, "Zebra")
    save_jpeg(rgb(64, 48, 2), os.path.join(z, "z1.jpg"), subsampling=2)  # baseline 4:2:0
    rgb(48, 48, 3).save(os.path.join(z, "z2.png"))  # exactly 48x48: no resize at 48
    rgb(39, 41, 4).save(os.path.join(z, "z3.ppm"))  # PPM P6

    # ---- train/cat : JPEG variants, odd names, broken files, nested directories
    c = d(train, "cat")
    save_jpeg(rgb(57, 43, 10), os.path.join(c, "a.jpg"), subsampling=0)  # baseline 4:4:4
    save_jpeg(rgb(21, 20, 11), os.path.join(c, "._a.jpg"), subsampling=2)  # AppleDouble name, real JPEG
    with open(os.path.join(c, "._b.jpg"), "wb") as f:  # AppleDouble resource fork: not an image
        f.write(struct.pack(">IIxxxxxxxxxxxxxxxxH", 0x00051607, 0x00020000, 1) + b"\x00" * 64)
    save_jpeg(rgb(45, 61, 12), os.path.join(c, "b_progressive.jpg"), progressive=True, subsampling=2)
    save_jpeg(rgb(50, 38, 13).convert("L"), os.path.join(c, "c_gray.jpg"))
    save_jpeg(rgb(41, 35, 14).convert("CMYK"), os.path.join(c, "d_cmyk.jpg"))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display; Keras ignores it
    save_jpeg(rgb(60, 30, 15), os.path.join(c, "e_exif6.jpg"), exif=exif.tobytes(), subsampling=2)
    open(os.path.join(c, "empty.jpg"), "wb").close()
    os.symlink("missing.jpg", os.path.join(c, "gone.jpg"))  # dangling symlink
    with open(os.path.join(c, "notes.txt"), "w") as f:
        f.write("not an image; excluded by extension\n")
    full = jpeg_bytes(rgb(52, 44, 16), subsampling=2)
    with open(os.path.join(c, "truncated.jpg"), "wb") as f:
        f.write(full[: len(full) * 6 // 10])
    rgb(27, 31, 17).save(os.path.join(c, "x.apng"), "PNG")  # PNG data under .apng
    rgb(35, 25, 18).save(os.path.join(c, "X.TIF"), "TIFF")  # real uncompressed TIFF
    with open(os.path.join(c, "xjpg"), "wb") as f:  # no dot, JPEG data
        f.write(jpeg_bytes(rgb(29, 37, 19), subsampling=2))
    rgb(44, 52, 20).convert("L").save(os.path.join(d(c, "x-y"), "f.png"))  # PNG mode L
    la = Image.merge("LA", (rgb(31, 26, 21).convert("L"), Image.fromarray(pattern(31, 26, 22)[..., 0])))
    la.save(os.path.join(d(c, "x", "z"), "g.png"))  # PNG mode LA
    save_jpeg(rgb(46, 34, 23), os.path.join(c, "x", "z", "h.jpeg"), subsampling=1)  # 4:2:2

    # ---- train/dog : PNG modes, BMP, 16-bit, gamma, symlinks
    g = d(train, "dog")
    os.symlink(os.path.join("..", "cat", "a.jpg"), os.path.join(g, "alias.jpg"))  # symlinked file
    rgb(43, 27, 30).save(os.path.join(g, "bmp24.bmp"))  # 24-bit BMP
    rgb(30, 30, 31).quantize(colors=48, method=Image.Quantize.MEDIANCUT).save(os.path.join(g, "bmp8.bmp"))
    rgb(40, 33, 32).convert("1").save(os.path.join(g, "bw1.png"))  # 1-bit PNG (dithered)
    os.symlink(os.path.join("..", "..", "..", "linked-target", "inner"), os.path.join(g, "deeper"))
    with open(os.path.join(g, "fake.png"), "w") as f:
        f.write("this is text, not a PNG\n")
    yy, xx = np.mgrid[0:28, 0:36]
    gray16 = ((xx * 37 + yy * 11) * 7 % 1400).astype(np.uint16)  # spans < 256 and >= 256
    write_raw_png(os.path.join(g, "gray16.png"), gray16, color_type=0, bit_depth=16)
    rgb16 = (pattern(38, 22, 33).astype(np.uint32) * 257 + np.arange(38)[None, :, None] * 3) % 65536
    write_raw_png(os.path.join(g, "rgb16.png"), rgb16.astype(np.uint16), color_type=2, bit_depth=16)
    write_raw_png(os.path.join(g, "gamma.png"), pattern(32, 24, 34), color_type=2, bit_depth=8,
                  extra_chunks=[(b"gAMA", struct.pack(">I", 100000))])  # file gamma 1.0 (linear)
    rgb(47, 39, 35).quantize(colors=32, method=Image.Quantize.MEDIANCUT).save(os.path.join(g, "p.png"))
    ptrns = rgb(34, 46, 36).quantize(colors=16, method=Image.Quantize.MEDIANCUT)
    ptrns.save(os.path.join(g, "p_trns.png"), transparency=bytes([0, 128, 255, 64]))
    rgba = np.dstack([pattern(53, 49, 37), pattern(53, 49, 38)[..., 1]])
    Image.fromarray(rgba, "RGBA").save(os.path.join(g, "rgba.png"))

    # ---- train/linked -> ../../linked-target (a class directory that is a relative symlink)
    os.makedirs(os.path.join(LINKED_TARGET, "inner"))
    save_jpeg(rgb(38, 42, 40), os.path.join(LINKED_TARGET, "l1.jpg"), subsampling=2)
    rgb(25, 33, 41).save(os.path.join(LINKED_TARGET, "l2.png"))
    rgb(49, 45, 42).save(os.path.join(LINKED_TARGET, "inner", "l3.png"), interlace=1)  # Adam7 interlaced
    os.symlink(os.path.join("..", "..", "linked-target"), os.path.join(train, "linked"))

    # ---- validation: classes Zebra, cat, dog (no .hidden, no linked)
    save_jpeg(rgb(30, 40, 50), os.path.join(d(val, "Zebra"), "vz.jpg"), subsampling=2)
    shutil.copyfile(os.path.join(c, "a.jpg"), os.path.join(d(val, "cat"), "a.jpg"))  # leakage: same bytes
    rgb(26, 36, 51).save(os.path.join(val, "cat", "vc.png"))
    rgb(42, 28, 52).save(os.path.join(d(val, "dog"), "vd.bmp"))


if __name__ == "__main__":
    build()
    print("tree written under", os.path.relpath(TREE, os.getcwd()), file=sys.stderr)
