"""Differential corpus: damaged variants of the decode fixtures with Pillow's verdict on each.

Run after make_fixtures.py:  python make_mutations.py
Writes mutations.json: per case the fixture, the damage (a cut length and/or byte edits) and what Pillow
did with the result (format, mode, size and FNV-1a 64 of convert('RGB'), or the error it raised).
The Swift test rebuilds each damaged file and requires the same outcome.
"""
import io, json, os, random, warnings
warnings.simplefilter("ignore")
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "decode")


def fnv1a64(data: bytes) -> str:
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


rng = random.Random(int(os.environ.get("MUTATIONS_SEED", "20261129")))
PER_FILE = int(os.environ.get("MUTATIONS_PER_FILE", "30"))
cases = []
for name in sorted(f for f in os.listdir(SRC) if not f.endswith(".rgb")):
    data = open(os.path.join(SRC, name), "rb").read()
    for r in range(PER_FILE):
        damaged = bytearray(data)
        cut, edits = None, []
        if r % 4 == 3:
            cut = rng.randrange(len(data) + 1)
            damaged = damaged[:cut]
        else:
            for _ in range(1 + r % 3):
                if not damaged:
                    break
                at = rng.randrange(len(damaged)) if r % 2 else min(rng.randrange(len(damaged)), rng.randrange(120))
                value = rng.randrange(256)
                damaged[at] = value
                edits.append([at, value])
        case = {"file": name, "cut": cut, "edits": edits}
        try:
            im = Image.open(io.BytesIO(bytes(damaged)))
            im.load()
            rgb = im if im.mode == "RGB" else im.convert("RGB")
            case.update(ok=True, format=im.format, mode=im.mode, width=im.size[0], height=im.size[1],
                        fnv1a64=fnv1a64(rgb.tobytes()))
        except Exception as e:
            case.update(ok=False, error=type(e).__name__)
        cases.append(case)

with open(os.path.join(HERE, "mutations.json"), "w") as f:
    json.dump(cases, f, separators=(",", ":"))
print(len(cases), "cases,", sum(c["ok"] for c in cases), "loaded by Pillow")
