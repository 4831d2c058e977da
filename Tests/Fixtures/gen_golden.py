"""Keras listing, pixels and narrow-VGG16 features for the fixture tree -> keras/golden.h5.

Everything goes through the real tf_keras code paths: DirectoryIterator for the listing and for
the per-file pixels (load_img + img_to_array + ImageDataGenerator.standardize), applications.vgg16
.preprocess_input for 'caffe', Model.predict for features.
"""
import io
import os
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import h5py
import numpy as np
import PIL
from PIL import Image, features as pil_features

from common import (BLOCK_WIDTHS, IMAGE_H, IMAGE_W, KERAS_DIR, TREE, WIDE_H, WIDE_W, build_tf_keras_vgg,
                    conv_weights, sanitise_error)

STR = h5py.string_dtype("utf-8")
GOLDEN = os.path.join(KERAS_DIR, "golden.h5")
POOLS = ["block1_pool", "block2_pool", "block3_pool", "block4_pool", "block5_pool"]
# Files (train) for which the 64x80 (HxW) variant and block4_pool are stored.
WIDE_FILES = ["Zebra/z1.jpg", "cat/a.jpg", "dog/rgba.png"]
BLOCK4_FILES = ["cat/b_progressive.jpg", "dog/p.png"]
# Files (train) whose full-size decoded RGB is stored: one per format / Pillow mode / JPEG variant.
DECODED_FILES = ["Zebra/z1.jpg", "Zebra/z2.png", "Zebra/z3.ppm", "cat/X.TIF", "cat/a.jpg", "cat/b_progressive.jpg",
                 "cat/c_gray.jpg", "cat/d_cmyk.jpg", "cat/e_exif6.jpg", "cat/x-y/f.png", "cat/x/z/g.png",
                 "cat/x/z/h.jpeg", "dog/bmp24.bmp", "dog/bmp8.bmp", "dog/bw1.png", "dog/gamma.png",
                 "dog/gray16.png", "dog/p.png", "dog/p_trns.png", "dog/rgb16.png", "dog/rgba.png",
                 "linked/inner/l3.png"]


def strings(values):
    return np.array(list(values), dtype=STR)


def pixels_via_iterator(directory, target, interpolation, generator=None):
    """(array float32 [N,H,W,3], ok uint8 [N], errors [N]) from DirectoryIterator, one file at a time."""
    from tf_keras.preprocessing.image import ImageDataGenerator
    gen = generator or ImageDataGenerator()
    it = gen.flow_from_directory(directory, target_size=target, class_mode="categorical", shuffle=False,
                                 interpolation=interpolation, batch_size=1)
    n = len(it.filenames)
    out = np.zeros((n, target[0], target[1], 3), np.float32)
    ok = np.zeros(n, np.uint8)
    errors = [""] * n
    for j in range(n):
        try:
            out[j] = it._get_batches_of_transformed_samples(np.array([j]))[0]
            ok[j] = 1
        except Exception as e:  # noqa: BLE001 - recorded, not fatal
            errors[j] = sanitise_error(e, directory)
    return it, out, ok, errors


def pillow_facts(path):
    """(format, mode, (h, w), full-size RGB uint8 or None) as load_img sees the file."""
    try:
        with open(path, "rb") as f:
            img = Image.open(io.BytesIO(f.read()))
        fmt, mode, (w, h) = img.format or "", img.mode, img.size
    except Exception:  # noqa: BLE001
        return "", "", (0, 0), None
    try:
        rgb = np.asarray(img.convert("RGB") if img.mode != "RGB" else img, dtype=np.uint8)
    except Exception:  # noqa: BLE001
        rgb = None
    return fmt, mode, (h, w), rgb


def djpeg_check(root, filenames, decoded):
    """Compares Pillow's JPEG decoding with the system libjpeg's djpeg (ISLOW, fancy upsampling)."""
    djpeg = shutil.which("djpeg")
    if not djpeg:
        return "djpeg not installed; not compared"
    lines = []
    for name in filenames:
        if name not in decoded:
            continue
        path = os.path.join(root, name)
        with open(path, "rb") as f:
            if f.read(2) != b"\xff\xd8":
                continue
        r = subprocess.run([djpeg, "-dct", "int", "-ppm", path], capture_output=True)
        if r.returncode != 0:
            lines.append(f"{name}: djpeg failed ({r.stderr.decode().strip()})")
            continue
        img = np.asarray(Image.open(io.BytesIO(r.stdout)).convert("RGB"))
        diff = np.abs(img.astype(int) - decoded[name].astype(int)).max() if img.shape == decoded[name].shape else -1
        lines.append(f"{name}: max |pillow - djpeg| = {diff}")
    return "\n".join(lines)


def split(f, directory, group, model, submodels, wide):
    from tf_keras.applications import vgg16
    from tf_keras.preprocessing.image import ImageDataGenerator

    it, near, ok, errors = pixels_via_iterator(directory, (IMAGE_H, IMAGE_W), "nearest")
    _, bil, ok_b, _ = pixels_via_iterator(directory, (IMAGE_H, IMAGE_W), "bilinear")
    _, resc, ok_r, _ = pixels_via_iterator(directory, (IMAGE_H, IMAGE_W), "nearest",
                                           ImageDataGenerator(rescale=1.0 / 255))
    assert np.array_equal(ok, ok_b) and np.array_equal(ok, ok_r)
    assert np.array_equal(near, np.rint(near)) and np.array_equal(bil, np.rint(bil))
    # ImageDataGenerator(rescale=1./255).standardize does x *= 1/255 on float32: a float32 multiply.
    assert np.array_equal(resc, near * np.float32(1.0 / 255)), "rescale is not a float32 multiply"
    by_division = near / np.float32(255)
    rescale_vs_division = int(np.count_nonzero(resc != by_division))

    names = list(it.filenames)
    class_names = sorted(it.class_indices, key=it.class_indices.get)
    g = f.create_group(group)
    g.attrs["keras_message"] = f"Found {len(names)} images belonging to {len(class_names)} classes."
    g.create_dataset("class_names", data=strings(class_names))
    g.create_dataset("filenames", data=strings(names))
    g.create_dataset("labels", data=np.asarray(it.classes, np.int32))
    g.create_dataset("loadable", data=ok)
    g.create_dataset("load_errors", data=strings(errors))
    facts = [pillow_facts(os.path.join(directory, n)) for n in names]
    g.create_dataset("formats", data=strings(x[0] for x in facts))
    g.create_dataset("modes", data=strings(x[1] for x in facts))
    g.create_dataset("original_hw", data=np.array([x[2] for x in facts], np.int32))
    comp = dict(compression="gzip", compression_opts=9, shuffle=False, chunks=(1, IMAGE_H, IMAGE_W, 3))
    g.create_dataset("pixels_nearest", data=near.astype(np.uint8), **comp)
    g.create_dataset("pixels_bilinear", data=bil.astype(np.uint8), **comp)

    idx = np.flatnonzero(ok)
    caffe_in = vgg16.preprocess_input(near[idx].copy())
    feats = {}
    for mode, x in (("caffe", caffe_in), ("rescale", resc[idx])):
        out = np.zeros((len(names), 1, 1, BLOCK_WIDTHS[-1]), np.float32)
        out[idx] = model.predict(x, verbose=0)
        g.create_dataset(f"features_{mode}", data=out)
        feats[mode] = out
    stats = {m: float(np.mean(v[idx] > 0)) for m, v in feats.items()}

    if wide:
        widx = np.array([names.index(n) for n in WIDE_FILES], np.int32)
        _, wnear, wok, _ = pixels_via_iterator(directory, (WIDE_H, WIDE_W), "nearest")
        assert wok[widx].all()
        wp = wnear[widx]
        g.create_dataset("indices_64x80", data=widx)
        g.create_dataset("pixels_nearest_64x80", data=wp.astype(np.uint8), compression="gzip",
                         compression_opts=9, chunks=(1, WIDE_H, WIDE_W, 3))
        g.create_dataset("features_caffe_64x80", data=model.predict(vgg16.preprocess_input(wp.copy()), verbose=0))
        g.create_dataset("features_rescale_64x80", data=model.predict(wp * np.float32(1.0 / 255), verbose=0))
        bidx = np.array([names.index(n) for n in BLOCK4_FILES], np.int32)
        g.create_dataset("block4_pool_indices", data=bidx)
        b4 = submodels.predict(vgg16.preprocess_input(near[bidx].copy()), verbose=0)[3]
        g.create_dataset("block4_pool_caffe", data=b4)
    decoded = {n: x[3] for n, x in zip(names, facts) if x[3] is not None}
    return names, ok, errors, facts, decoded, stats, rescale_vs_division


def main():
    import tensorflow as tf
    import tf_keras
    import keras
    tf_keras.utils.set_random_seed(0)
    w = conv_weights()
    model = build_tf_keras_vgg(w)
    submodels = tf_keras.Model(model.input, [model.get_layer(n).output for n in POOLS])
    tmp = GOLDEN + ".tmp"
    report = []
    with h5py.File(tmp, "w", libver="earliest", track_order=False) as f:
        f.attrs["generator"] = "Tests/Fixtures/gen_golden.py"
        for k, v in {"tf_keras": tf_keras.__version__, "keras": keras.__version__,
                     "tensorflow": tf.__version__, "pillow": PIL.__version__, "numpy": np.__version__,
                     "h5py": h5py.__version__,
                     "libjpeg_turbo": pil_features.version("libjpeg_turbo") or ""}.items():
            f.attrs[f"version_{k}"] = v
        f.attrs["image_height"], f.attrs["image_width"] = IMAGE_H, IMAGE_W
        f.attrs["block_widths"] = np.array(BLOCK_WIDTHS, np.int32)
        f.attrs["weights_file"] = "weights/notop-official.h5"
        f.attrs["caffe_mean_bgr"] = np.array([103.939, 116.779, 123.68], np.float64)
        dec_all = {}
        for group, wide in (("train", True), ("validation", False)):
            names, ok, errors, facts, decoded, stats, rvd = split(
                f, os.path.join(TREE, group), group, model, submodels, wide)
            if group == "train":
                f.create_dataset("class_names", data=f["train/class_names"][()])
                dec_all = decoded
            report.append(f"[{group}] {len(names)} files, {int(ok.sum())} loadable; "
                          f"fraction of features > 0: {stats}; rescale != x/255 in {rvd} values")
            for n, o, e, x in zip(names, ok, errors, facts):
                report.append(f"  {n:28s} {x[0]:5s} {x[1]:5s} {str(x[2]):9s} {'ok' if o else e}")
        dg = f.create_group("decoded")
        dg.create_dataset("filenames", data=strings(DECODED_FILES))
        for n in DECODED_FILES:
            ds = dg.create_dataset(n.replace("/", "__"), data=dec_all[n])
            ds.attrs["filename"] = n
        # Engine test without decoding: a float32 batch (caffe-like range) and every pool output.
        rng = np.random.default_rng(2024)
        x = rng.uniform(-124.0, 152.0, size=(2, IMAGE_H, IMAGE_W, 3)).astype(np.float32)
        dr = f.create_group("direct")
        dr.create_dataset("input", data=x)
        for name, out in zip(POOLS, submodels.predict(x, verbose=0)):
            dr.create_dataset(name, data=out)
    os.replace(tmp, GOLDEN)
    report.append("JPEG decode, Pillow (bundled libjpeg-turbo) vs system djpeg:")
    report.append(djpeg_check(os.path.join(TREE, "train"), sorted(dec_all), dec_all))
    with open(os.path.join(KERAS_DIR, "golden-report.txt"), "w") as fh:
        fh.write("\n".join(report) + "\n")
    print("\n".join(report), file=sys.stderr)


if __name__ == "__main__":
    main()
