"""Writes a seeded tree of JPEG test images (two classes) for `make bench`.

Usage: make_images.py OUT_DIR COUNT [WIDTH HEIGHT]
Images are smooth colour fields with noise and shapes, so that they compress like photographs
rather than like flat colour or pure noise.
"""
import os
import sys

import numpy as np
from PIL import Image, ImageDraw


def main():
    out, count = sys.argv[1], int(sys.argv[2])
    width = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    height = int(sys.argv[4]) if len(sys.argv) > 4 else 375
    rng = np.random.default_rng(1)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    for index in range(count):
        label = ("cats", "dogs")[index % 2]
        os.makedirs(os.path.join(out, label), exist_ok=True)
        path = os.path.join(out, label, f"{label[:-1]}.{index:05d}.jpg")
        if os.path.exists(path):
            continue
        channels = []
        for _ in range(3):
            fx, fy, phase = rng.uniform(0.002, 0.03, 2).tolist() + [rng.uniform(0, 6.3)]
            field = 127 + 90 * np.sin(xs * fx + ys * fy + phase)
            channels.append(field + rng.normal(0, 12, size=field.shape))
        pixels = np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels, "RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x0, y0 = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
            x1, y1 = x0 + int(rng.integers(20, 160)), y0 + int(rng.integers(20, 120))
            draw.ellipse((x0, y0, x1, y1), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        image.save(path, "JPEG", quality=90)


if __name__ == "__main__":
    main()
