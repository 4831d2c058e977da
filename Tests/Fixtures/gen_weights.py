"""Writes the narrow VGG16 weights in every layout the weights readers accept, plus bad files.

Output: Tests/Fixtures/keras/weights/*.h5 (see README.md). Self-checks that Keras loads the
hand-written official layout and that tf_keras and Keras 3 give the same features.
"""
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import h5py
import numpy as np

from common import (BLOCK_CONVS, BLOCK_WIDTHS, WEIGHTS_DIR, build_tf_keras_vgg, conv_weights,
                    dense_tail_weights, layer_plan)


def S(names):
    """Fixed-length byte strings, as Keras 1 / h5py wrote them (numpy 'S' dtype)."""
    return np.array([n.encode("utf8") for n in names])


def write_official(path, plan, weights, tail=None, kernel_override=None):
    """The layout of vgg16_weights_tf_dim_ordering_tf_kernels[_notop].h5.

    Root attr layer_names (fixed 'S'); per layer a group with attr weight_names: fixed 'S' names
    '<layer>_W_1:0', '<layer>_b_1:0' for layers with weights, and an EMPTY float64 array (what h5py
    stores for an empty Python list) for layers without; datasets /<layer>/<layer>_W_1:0 and _b_1:0.
    No keras_version / backend attributes.
    """
    kernel_override = kernel_override or {}
    names = [p[0] for p in plan] + ([] if tail is None else ["flatten"] + list(tail))
    with h5py.File(path, "w", libver="earliest") as f:
        f.attrs["layer_names"] = S(names)
        for name in names:
            g = f.create_group(name)
            if name in weights or (tail is not None and name in tail):
                k, b = weights[name] if name in weights else tail[name]
                k = kernel_override.get(name, k)
                wn, bn = f"{name}_W_1:0", f"{name}_b_1:0"
                g.attrs["weight_names"] = S([wn, bn])
                g.create_dataset(wn, data=k)
                g.create_dataset(bn, data=b)
            else:
                g.attrs["weight_names"] = np.array([], dtype=np.float64)


def write_theano_gist(path, plan, weights, tail):
    """The Theano-era layout of the VGG-16 gist (Keras 0.x Sequential.save_weights).

    Root attr nb_layers (int64). Groups layer_0 … layer_{n-1}, one per Sequential layer, each with
    attr nb_params (int64) and datasets param_0 … The Sequential is, per conv:
    ZeroPadding2D((1,1)) [0 params] then Convolution2D 'valid' [param_0 = W, param_1 = b];
    MaxPooling2D [0 params] after each block; then Flatten [0], Dense fc1 [W (in,out), b],
    Dropout [0], Dense fc2, Dropout, Dense predictions.
    W_th = transpose(W_hwio, (3, 2, 0, 1))[:, :, ::-1, ::-1]: (out, in, kh, kw), spatially flipped
    because Theano's conv2d is a true convolution.
    """
    seq = []
    for name, kind, _, _ in plan:
        if kind == "conv":
            k, b = weights[name]
            seq.append(("zeropadding", []))
            seq.append((name, [np.ascontiguousarray(np.transpose(k, (3, 2, 0, 1))[:, :, ::-1, ::-1]), b]))
        else:
            seq.append((name, []))
    seq.append(("flatten", []))
    tail_names = list(tail)
    for i, name in enumerate(tail_names):
        seq.append((name, list(tail[name])))
        if i < len(tail_names) - 1:
            seq.append(("dropout", []))
    with h5py.File(path, "w", libver="earliest") as f:
        f.attrs["nb_layers"] = np.int64(len(seq))
        for i, (_, params) in enumerate(seq):
            g = f.create_group(f"layer_{i}")
            g.attrs["nb_params"] = np.int64(len(params))
            for p, arr in enumerate(params):
                g.create_dataset(f"param_{p}", data=arr)
    return [name for name, _ in seq]


def main():
    if os.path.isdir(WEIGHTS_DIR):
        shutil.rmtree(WEIGHTS_DIR)
    os.makedirs(WEIGHTS_DIR)
    w = conv_weights()
    tail = dense_tail_weights()
    plan = layer_plan()
    P = lambda n: os.path.join(WEIGHTS_DIR, n)  # noqa: E731

    write_official(P("notop-official.h5"), plan, w)
    write_official(P("full-official.h5"), plan, w, tail=tail)
    gist_layers = write_theano_gist(P("theano-gist.h5"), plan, w, tail)

    # tf_keras (Keras 2 API) save_weights
    import tensorflow as tf
    import tf_keras
    tf_keras.utils.set_random_seed(0)
    model = build_tf_keras_vgg(w)
    model.save_weights(P("keras2-save-weights.h5"))

    # Check: Keras loads the hand-written official files into the same architecture.
    check = build_tf_keras_vgg({k: (np.zeros_like(a), np.zeros_like(b)) for k, (a, b) in w.items()},
                               name="check")
    check.load_weights(P("notop-official.h5"))
    for name, (k, b) in w.items():
        got = check.get_layer(name).get_weights()
        assert np.array_equal(got[0], k) and np.array_equal(got[1], b), name
    full = tf_keras.Sequential([tf_keras.layers.InputLayer((48, 48, 3))] + [l for l in build_tf_keras_vgg(
        w, input_shape=(48, 48, 3), name="fullbase").layers[1:]] + [
        tf_keras.layers.Flatten(name="flatten"),
        tf_keras.layers.Dense(16, activation="relu", name="fc1"),
        tf_keras.layers.Dense(16, activation="relu", name="fc2"),
        tf_keras.layers.Dense(10, activation="softmax", name="predictions")])
    full.load_weights(P("full-official.h5"))
    assert np.array_equal(full.get_layer("fc2").get_weights()[0], tail["fc2"][0])
    check.load_weights(P("keras2-save-weights.h5"))
    assert np.array_equal(check.get_layer("block5_conv3").get_weights()[0], w["block5_conv3"][0])

    # Theano file: undo the convention and compare.
    with h5py.File(P("theano-gist.h5"), "r") as f:
        convs = [i for i, n in enumerate(gist_layers) if n.startswith("block") and "conv" in n]
        for i in convs:
            name = gist_layers[i]
            wth = f[f"layer_{i}/param_0"][()]
            back = np.transpose(wth[:, :, ::-1, ::-1], (2, 3, 1, 0))
            assert np.array_equal(back, w[name][0]), name

    # Keras 3 .weights.h5 from a Keras 3 model holding the same weights; check its features agree.
    import keras
    k3_in = keras.Input(shape=(None, None, 3), name="input_1")
    x = k3_in
    for lname, kind, _, cout in plan:
        x = (keras.layers.Conv2D(cout, (3, 3), activation="relu", padding="same", name=lname)
             if kind == "conv" else keras.layers.MaxPooling2D((2, 2), strides=(2, 2), name=lname))(x)
    k3 = keras.Model(k3_in, x, name="vgg16_narrow")
    for name, (k, b) in w.items():
        k3.get_layer(name).set_weights([k, b])
    k3.save_weights(P("keras3.weights.h5"))
    probe = np.random.default_rng(5).uniform(-120, 140, size=(2, 64, 80, 3)).astype(np.float32)
    a = model.predict(probe, verbose=0)
    b = np.asarray(k3.predict(probe, verbose=0))
    assert a.shape == (2, 2, 2, BLOCK_WIDTHS[-1]) and np.allclose(a, b, rtol=1e-5, atol=1e-4 * np.abs(a).max())

    # ---- bad files
    with open(P("notop-official.h5"), "rb") as f:
        data = f.read()
    with open(P("truncated.h5"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(P("not-hdf5.h5"), "w") as f:
        f.write("This is not an HDF5 file. It only has a .h5 name.\n")
    # VGG19-like: a fourth conv in blocks 3, 4 and 5 (block3_conv4, block4_conv4, block5_conv4).
    convs19 = (2, 2, 4, 4, 4)
    w19 = conv_weights(seed=1919, convs=convs19)
    write_official(P("vgg19-like.h5"), layer_plan(convs19), w19)
    # block3_conv2 kernel with a wrong input width: (3,3,12,8) instead of (3,3,8,8).
    bad = np.random.default_rng(7).normal(0, 0.1, size=(3, 3, 12, BLOCK_WIDTHS[2])).astype(np.float32)
    write_official(P("wrong-shape.h5"), plan, w, kernel_override={"block3_conv2": bad})
    # block4_conv2 removed (from layer_names and as a group).
    plan_missing = [p for p in plan if p[0] != "block4_conv2"]
    write_official(P("missing-layer.h5"), plan_missing, {k: v for k, v in w.items() if k != "block4_conv2"})
    # ResNet-like: official-style layout, other layer names.
    rng = np.random.default_rng(50)
    rn_plan = [("conv1", "conv", 3, 8), ("bn_conv1", "bn", 8, 8), ("res2a_branch2a", "conv", 8, 8),
               ("res2a_branch1", "conv", 8, 8)]
    with h5py.File(P("resnet-like.h5"), "w", libver="earliest") as f:
        f.attrs["layer_names"] = S([n for n, *_ in rn_plan] + ["avg_pool"])
        for name, kind, cin, cout in rn_plan:
            g = f.create_group(name)
            if kind == "conv":
                names = [f"{name}_W:0", f"{name}_b:0"]
                arrs = [rng.normal(0, 0.1, (3, 3, cin, cout)), rng.normal(0, 0.1, (cout,))]
            else:
                names = [f"{name}_{s}:0" for s in ("gamma", "beta", "running_mean", "running_std")]
                arrs = [rng.normal(0, 0.1, (cout,)) for _ in names]
            g.attrs["weight_names"] = S(names)
            for n, a in zip(names, arrs):
                g.create_dataset(n, data=a.astype(np.float32))
        f.create_group("avg_pool").attrs["weight_names"] = np.array([], dtype=np.float64)
    print("weights written", file=sys.stderr)


if __name__ == "__main__":
    main()
