"""Regenerates the ImageInput test fixtures from Pillow (the reader Keras' load_img uses).

Run from this directory with a Python that has Pillow and NumPy:
    python make_fixtures.py
Writes decode/*.<ext> (inputs), decode/*.rgb (Pillow's convert('RGB') as raw HWC bytes) and
expected.json (format, mode, size of each input; FNV-1a 64 hashes of Pillow resizes of synthetic images).
"""
import io, json, os, struct, zlib
import numpy as np
from PIL import Image, features

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "decode")
os.makedirs(OUT, exist_ok=True)
for f in os.listdir(OUT):
    os.remove(os.path.join(OUT, f))


def fnv1a64(data: bytes) -> str:
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def synthetic(w, h):
    """Deterministic RGB test pattern, also computed by the Swift tests (ImageFiles.syntheticRGB)."""
    y, x = np.mgrid[0:h, 0:w]
    c = np.arange(3)[None, None, :]
    v = (x[..., None] * 7 + y[..., None] * 13 + c * 71 + (x[..., None] * y[..., None]) % 29) & 255
    return v.astype(np.uint8)


W, H = 37, 53
base = synthetic(W, H)
base_img = Image.fromarray(base, "RGB")
gray = Image.fromarray(((base[..., 0].astype(int) * 3 + base[..., 1]) // 4).astype(np.uint8), "L")

images = {}


def save(name, im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    images[name] = b.getvalue()


def png_chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


def raw_png(w, h, depth, ct, rows, extra=b""):
    raw = b"".join(b"\0" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ct, 0, 0, 0)) + extra
            + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


rng = np.random.default_rng(1234)
# JPEG
save("rgb420.jpg", base_img, "JPEG", quality=90)
save("rgb444.jpg", base_img, "JPEG", quality=95, subsampling=0)
save("rgb422.jpg", base_img, "JPEG", quality=75, subsampling=1)
save("progressive.jpg", base_img, "JPEG", quality=85, progressive=True)
save("gray.jpg", gray, "JPEG", quality=90)
save("cmyk.jpg", base_img.convert("CMYK"), "JPEG", quality=90)
noise = Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), "RGB")
save("noise.jpg", noise, "JPEG", quality=60)
# PNG
save("rgb.png", base_img, "PNG")
rgba = base_img.copy(); rgba.putalpha(Image.fromarray((base[..., 2] // 2).astype(np.uint8)))
save("rgba.png", rgba, "PNG")
la = Image.merge("LA", [gray, Image.fromarray(base[..., 1])])
save("la.png", la, "PNG")
save("l.png", gray, "PNG")
pal = base_img.quantize(colors=50)
save("p.png", pal, "PNG")
pal_t = pal.copy(); pal_t.info["transparency"] = bytes(range(0, 250, 5))
save("p_trns.png", pal_t, "PNG", transparency=bytes(range(0, 250, 5)))
pal4 = base_img.quantize(colors=16)
save("p4.png", pal4, "PNG", bits=4)
save("bilevel.png", gray.convert("1"), "PNG")
i16 = Image.fromarray((base[..., 0].astype(np.uint16) * 3 + (base[..., 1] // 200).astype(np.uint16)))
save("i16.png", i16, "PNG")
rows16 = [b"".join(struct.pack(">HHH", *(min(65535, int(v) * 257 + (x % 7)) for v in base[y, x])) for x in range(W)) for y in range(H)]
images["rgb16.png"] = raw_png(W, H, 16, 2, rows16)
rows16a = [b"".join(struct.pack(">HHHH", *(int(v) * 251 for v in base[y, x]), 40000) for x in range(W)) for y in range(H)]
images["rgba16.png"] = raw_png(W, H, 16, 6, rows16a)
rows16la = [b"".join(struct.pack(">HH", int(base[y, x, 0]) * 256 + 3, 999) for x in range(W)) for y in range(H)]
images["la16.png"] = raw_png(W, H, 16, 4, rows16la)
rows2 = [bytes((((x * 4 + y) % 256) & 0xFF) for x in range((W + 3) // 4)) for y in range(H)]
images["gray2.png"] = raw_png(W, H, 2, 0, rows2)
rows4 = [bytes(((x * 16 + y * 3) & 0xFF) for x in range((W + 1) // 2)) for y in range(H)]
images["gray4.png"] = raw_png(W, H, 4, 0, rows4)
plte = png_chunk(b"PLTE", bytes([10, 20, 30, 40, 50, 60, 70, 80, 90]))
images["p_short_palette.png"] = raw_png(4, 2, 8, 3, [bytes([0, 1, 2, 3]), bytes([200, 2, 1, 0])], plte)
images["gamma.png"] = raw_png(4, 1, 8, 0, [bytes([0, 64, 128, 255])], png_chunk(b"gAMA", struct.pack(">I", 100000)))
# BMP
save("rgb24.bmp", base_img, "BMP")
save("p8.bmp", pal, "BMP")
save("l8.bmp", gray, "BMP")
save("bilevel.bmp", gray.convert("1"), "BMP")


def bmp(w, h, bits, rows, palette=b"", compression=0, masks=b"", top_down=False, header=40):
    stride = ((w * bits + 31) >> 3) & ~3
    data = b"".join(r.ljust(stride, b"\0") for r in (rows if top_down else rows[::-1]))
    info = struct.pack("<IiiHHIIiiII", header, w, -h if top_down else h, 1, bits, compression, len(data), 2835, 2835,
                       len(palette) // 4 if palette else 0, 0)
    info = info.ljust(header, b"\0") if header > 40 else info
    if masks and header > 40:
        info = info[:40] + masks + info[40 + len(masks):]
        masks_after = b""
    else:
        masks_after = masks
    off = 14 + len(info) + len(masks_after) + len(palette)
    return b"BM" + struct.pack("<IHHI", off + len(data), 0, 0, off) + info + masks_after + palette + data


rows24 = [bytes(base[y, :, ::-1].tobytes()) for y in range(H)]
images["topdown24.bmp"] = bmp(W, H, 24, rows24, top_down=True)
rows32 = [b"".join(bytes([base[y, x, 2], base[y, x, 1], base[y, x, 0], 77]) for x in range(W)) for y in range(H)]
images["bgrx32.bmp"] = bmp(W, H, 32, rows32)
images["bgra32_bitfields.bmp"] = bmp(W, H, 32, rows32, compression=3, header=108,
                                     masks=struct.pack("<IIII", 0xFF0000, 0xFF00, 0xFF, 0xFF000000))
rows555 = [b"".join(struct.pack("<H", ((int(base[y, x, 0]) >> 3) << 10) | ((int(base[y, x, 1]) >> 3) << 5) | (int(base[y, x, 2]) >> 3)) for x in range(W)) for y in range(H)]
images["rgb555.bmp"] = bmp(W, H, 16, rows555)
rows565 = [b"".join(struct.pack("<H", ((int(base[y, x, 0]) >> 3) << 11) | ((int(base[y, x, 1]) >> 2) << 5) | (int(base[y, x, 2]) >> 3)) for x in range(W)) for y in range(H)]
images["rgb565.bmp"] = bmp(W, H, 16, rows565, compression=3, masks=struct.pack("<III", 0xF800, 0x7E0, 0x1F))
pal4 = b"".join(bytes([i * 13 % 256, i * 29 % 256, i * 71 % 256, 0]) for i in range(16))
rows4b = [bytes((((x * 2 + y) % 16) << 4) | ((x * 2 + 1 + y) % 16) for x in range((W + 1) // 2)) for y in range(H)]
images["p4.bmp"] = bmp(W, H, 4, rows4b, palette=pal4)


def rle_rows(rows, rle4, with_delta=False):
    """RLE8/RLE4 stream: encoded runs for repeats, absolute runs otherwise, EOL per row, EOB at the end."""
    out = bytearray()
    for y, row in enumerate(rows):
        x = 0
        if with_delta and y == 2:
            out += bytes([0, 2, 3, 1])  # delta: 3 right, 1 up (skips the rest of this row and 3 pixels)
            continue
        while x < len(row):
            run = 1
            while x + run < len(row) and row[x + run] == row[x] and run < 255:
                run += 1
            if run >= 3 or len(row) - x < 3:
                v = row[x]
                out += bytes([run, (v << 4 | v) if rle4 else v])
                x += run
            else:
                n = min(len(row) - x, 40)
                chunk = row[x:x + n]
                out += bytes([0, n])
                if rle4:
                    packed = bytes((chunk[i] << 4) | (chunk[i + 1] if i + 1 < n else 0) for i in range(0, n, 2))
                else:
                    packed = bytes(chunk)
                out += packed
                if len(packed) % 2:
                    out += b"\0"
                x += n
        out += bytes([0, 0])
    out += bytes([0, 1])
    return bytes(out)


def rle_bmp(w, h, bits, rows, palette):
    data = rle_rows(rows, bits == 4)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, bits, 2 if bits == 4 else 1, len(data), 2835, 2835,
                       len(palette) // 4, 0)
    off = 14 + 40 + len(palette)
    return b"BM" + struct.pack("<IHHI", off + len(data), 0, 0, off) + info + palette + data


idx8 = [[(x // 5 + y // 3) % 20 if (x + y) % 7 else (x * y) % 20 for x in range(W)] for y in range(H)][::-1]
pal20 = b"".join(bytes([i * 11 % 256, i * 23 % 256, i * 37 % 256, 0]) for i in range(20))
images["rle8.bmp"] = rle_bmp(W, H, 8, idx8, pal20)
idx4 = [[v % 16 for v in r] for r in idx8]
images["rle4.bmp"] = rle_bmp(W, H, 4, idx4, pal20[:64])
delta = rle_rows(idx8, False, with_delta=True)
images["rle8_delta.bmp"] = rle_bmp(W, H, 8, idx8, pal20)[:14 + 40 + len(pal20)] + delta
gray_pal = b"".join(bytes([i, i, i, 0]) for i in range(256))
images["rle8_gray.bmp"] = rle_bmp(W, H, 8, idx8, gray_pal)

# PPM family
save("rgb.ppm", base_img, "PPM")
save("gray.pgm", gray, "PPM")
save("bilevel.pbm", gray.convert("1"), "PPM")
save("i16.pgm", i16, "PPM")
hdr = b"P6\n# a comment\n%d %d\n1000\n" % (W, H)
images["rgb1000.ppm"] = hdr + b"".join(struct.pack(">H", int(v) * 1000 // 255 + (i % 3)) for i, v in enumerate(base.flatten()))
g = np.asarray(gray)
images["plain_bitmap.pbm"] = (b"P1\n# plain bitmap\n%d %d\n" % (W, H)
                              + b"\n".join(b"".join(b"1" if v < 128 else b"0" for v in row) for row in g) + b"\n")
images["plain_gray.pgm"] = (b"P2 %d %d 255\n" % (W, H)
                            + b"\n".join(b" ".join(b"%d" % v for v in row) + b" # row comment" for row in g) + b"\n")
images["plain_rgb1000.ppm"] = (b"P3\n%d %d\n1000\n" % (W, H)
                               + b" ".join(b"%d" % (int(v) * 1000 // 255) for v in base.flatten()))
images["plain_gray4000.pgm"] = (b"P2 %d %d 4000\n" % (W, H) + b"\t".join(b"%d" % (int(v) * 15) for v in g.flatten()))
images["gray100.pgm"] = b"P5 %d %d 100 " % (W, H) + bytes(int(v) * 100 // 255 for v in np.asarray(gray).flatten())

# Damaged files: Pillow's verdict (pixels, or an error) is recorded either way.
def crc_chunk(t, d, bad=False):
    c = zlib.crc32(t + d) & 0xFFFFFFFF
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", c ^ 1 if bad else c)


small_raw = b"".join(b"\0" + bytes([x * 10 + y for x in range(4)]) for y in range(2))


def small_png(extra=b"", bad_idat=False, bad_iend=False, no_iend=False, idat=None):
    d = (b"\x89PNG\r\n\x1a\n" + crc_chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 2, 8, 0, 0, 0, 0)) + extra
         + crc_chunk(b"IDAT", zlib.compress(small_raw) if idat is None else idat, bad_idat))
    return d if no_iend else d + crc_chunk(b"IEND", b"", bad_iend)


images["damaged_text_crc.png"] = small_png(crc_chunk(b"tEXt", b"a\0b", True))
images["damaged_idat_crc.png"] = small_png(bad_idat=True)
images["damaged_iend_crc.png"] = small_png(bad_iend=True)
images["damaged_no_iend.png"] = small_png(no_iend=True)
images["damaged_extra_zlib.png"] = small_png(idat=zlib.compress(small_raw + b"\0\1\2"))
images["damaged_short_zlib.png"] = small_png(idat=zlib.compress(small_raw)[:-6])
images["damaged_unknown_critical.png"] = small_png(crc_chunk(b"ABCD", b"xx"))
images["damaged_bomb.png"] = (b"\x89PNG\r\n\x1a\n" + crc_chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 10000, 8, 0, 0, 0, 0))
                               + crc_chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + crc_chunk(b"IEND", b""))
images["damaged_bomb.bmp"] = bmp(1, 1, 24, [b"\0\0\0"])[:18] + struct.pack("<ii", 20000, 10000) + bmp(1, 1, 24, [b"\0\0\0"])[26:]
images["damaged_no_eoi.jpg"] = images["rgb420.jpg"][:-2]
images["damaged_half.jpg"] = images["rgb420.jpg"][: len(images["rgb420.jpg"]) // 2]
images["damaged_progressive_cut.jpg"] = images["progressive.jpg"][:-30]
images["damaged_trailing.jpg"] = images["rgb420.jpg"] + b"trailing bytes"
images["damaged_short.bmp"] = images["rgb24.bmp"][:-3]
images["damaged_short.ppm"] = images["rgb.ppm"][:-1]
images["damaged_header.pgm"] = b"P5 12"
images["damaged_maxval0.pgm"] = b"P5 1 1 0 \0"

# Inputs written by make_c_inputs.c (YCCK JPEG, interlaced PNGs), which Pillow cannot write.
for name in sorted(os.listdir(os.path.join(HERE, "c_inputs"))):
    with open(os.path.join(HERE, "c_inputs", name), "rb") as f:
        images[name] = f.read()

manifest = {"pillow": Image.__version__, "libjpeg_turbo": features.version("libjpeg_turbo"), "decode": [],
            "errors": [], "resize": []}
for name, data in sorted(images.items()):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    try:
        im = Image.open(io.BytesIO(data))
        mode, fmt = im.mode, im.format
        im.load()
        rgb = im if im.mode == "RGB" else im.convert("RGB")
    except Exception as e:  # Pillow refuses it: the Swift decoder must refuse it too
        manifest["errors"].append({"file": name, "pillow": "%s: %s" % (type(e).__name__, str(e).split(" <")[0])})
        continue
    arr = np.asarray(rgb)
    with open(os.path.join(OUT, name + ".rgb"), "wb") as f:
        f.write(arr.tobytes())
    manifest["decode"].append({"file": name, "format": fmt, "mode": mode, "width": im.size[0], "height": im.size[1]})

pairs = []
for (sw, sh) in [(37, 53), (500, 375), (375, 500), (150, 150), (7, 5), (640, 480), (224, 224), (3, 1), (1, 7)]:
    for (tw, th) in [(150, 150), (224, 224), (61, 29), (20, 17), (37, 10), (5, 53), (1, 1), (299, 301)]:
        pairs.append((sw, sh, tw, th))
# Around the boundary where Pillow 13 switches to a vertical-first pass (inH - outH > 2 * (inW - outW)).
pairs += [(100, 100, 58, 4), (100, 100, 52, 4), (100, 100, 58, 16), (100, 100, 64, 16), (30, 100, 4, 48),
          (30, 100, 8, 48), (30, 100, 28, 96), (30, 100, 32, 96), (37, 53, 10, 4), (37, 53, 13, 4),
          (100, 100, 136, 94), (100, 100, 136, 106), (53, 37, 45, 10), (64, 48, 45, 10), (64, 48, 60, 37)]
pick = np.random.default_rng(7)
for _ in range(40):
    sw, sh, tw, th = (int(v) for v in pick.integers(1, 260, 4))
    pairs.append((sw, sh, tw, th))
for (sw, sh, tw, th) in pairs:
    if (tw, th) == (sw, sh):
        continue
    src = Image.fromarray(synthetic(sw, sh), "RGB")
    if True:
        for interp, resample in [("nearest", Image.NEAREST), ("bilinear", Image.BILINEAR)]:
            out = np.asarray(src.resize((tw, th), resample))
            manifest["resize"].append({"source": [sw, sh], "target": [tw, th], "interpolation": interp,
                                       "fnv1a64": fnv1a64(out.tobytes())})

# Preprocessing known answers, as Keras computes them in float32 (bit patterns, for exactness).
x = np.arange(256, dtype=np.float32)
resc = x.copy(); resc *= 1. / 255
caffe = np.stack([x, x, x], axis=-1)[None]
caffe = caffe[..., ::-1].copy()
for i, m in enumerate([103.939, 116.779, 123.68]):
    caffe[..., i] -= m
manifest["rescale_bits"] = [int(v) for v in resc.view(np.uint32)]
manifest["caffe_bits_bgr"] = [[int(v) for v in caffe[0, :, c].view(np.uint32)] for c in range(3)]

with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump(manifest, f, indent=1)
print(len(images), "images,", len(manifest["resize"]), "resize cases")
