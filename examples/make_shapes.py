"""Draws the bundled example image tree `examples/shapes/` (committed; rerun only to change it).

Three classes of simple shapes on noisy backgrounds, as JPEG, in the layout Keras'
flow_from_directory reads: shapes/{train,validation}/{circle,square,triangle}/NNN.jpg.
Usage: python3 examples/make_shapes.py   (needs Pillow)
"""
import os
import random

from PIL import Image, ImageDraw, ImageFilter

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shapes")
COUNTS = {"train": 20, "validation": 8}


def draw(kind, rng):
    w, h = rng.randint(140, 220), rng.randint(120, 200)
    background = tuple(rng.randint(0, 255) for _ in range(3))
    image = Image.new("RGB", (w, h), background)
    pixels = image.load()
    for _ in range(w * h // 6):
        x, y = rng.randrange(w), rng.randrange(h)
        pixels[x, y] = tuple(min(255, max(0, c + rng.randint(-40, 40))) for c in background)
    d = ImageDraw.Draw(image)
    colour = tuple(rng.randint(0, 255) for _ in range(3))
    size = rng.randint(min(w, h) // 3, min(w, h) * 2 // 3)
    cx, cy = rng.randint(size // 2, w - size // 2), rng.randint(size // 2, h - size // 2)
    box = (cx - size // 2, cy - size // 2, cx + size // 2, cy + size // 2)
    if kind == "circle":
        d.ellipse(box, fill=colour)
    elif kind == "square":
        d.rectangle(box, fill=colour)
    else:
        d.polygon([(cx, box[1]), (box[0], box[3]), (box[2], box[3])], fill=colour)
    return image.filter(ImageFilter.GaussianBlur(0.6))


def main():
    rng = random.Random(2024)
    for split, count in COUNTS.items():
        for kind in ("circle", "square", "triangle"):
            folder = os.path.join(ROOT, split, kind)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                draw(kind, rng).save(os.path.join(folder, "%03d.jpg" % i), quality=85)


if __name__ == "__main__":
    main()
