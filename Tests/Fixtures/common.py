"""Shared definitions for the fixture generators: paths, the narrow VGG16 and its seeded weights."""
import os
import re

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
KERAS_DIR = os.path.join(HERE, "keras")
TREE = os.path.join(KERAS_DIR, "tree")
WEIGHTS_DIR = os.path.join(KERAS_DIR, "weights")

# Narrow VGG16: the real network has widths (64, 128, 256, 512, 512).
BLOCK_WIDTHS = (4, 8, 8, 16, 16)
BLOCK_CONVS = (2, 2, 3, 3, 3)
IMAGE_H = IMAGE_W = 48
WIDE_H, WIDE_W = 64, 80  # non-square input: block5_pool is 2x2
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def layer_plan(convs=BLOCK_CONVS, widths=BLOCK_WIDTHS):
    """[(name, kind, in_channels, out_channels)] in Keras order; kind is 'conv' or 'pool'."""
    plan, cin = [], 3
    for b, (n, w) in enumerate(zip(convs, widths), start=1):
        for k in range(1, n + 1):
            plan.append((f"block{b}_conv{k}", "conv", cin, w))
            cin = w
        plan.append((f"block{b}_pool", "pool", cin, cin))
    return plan


def conv_weights(seed=1234, convs=BLOCK_CONVS, widths=BLOCK_WIDTHS):
    """{layer: (kernel HWIO float32 (3,3,in,out), bias float32 (out,))}, He-normal kernels and
    small nonzero biases, from one seeded generator in layer order."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, kind, cin, cout in layer_plan(convs, widths):
        if kind != "conv":
            continue
        std = np.sqrt(2.0 / (9 * cin))
        kernel = rng.normal(0.0, std, size=(3, 3, cin, cout)).astype(np.float32)
        bias = rng.normal(0.02, 0.05, size=(cout,)).astype(np.float32)
        out[name] = (kernel, bias)
    return out


def dense_tail_weights(seed=99, fin=BLOCK_WIDTHS[-1], sizes=(("fc1", 16), ("fc2", 16), ("predictions", 10))):
    """Small fully-connected tail (kernel (in,out), bias) used only by the 'full' files; readers ignore it."""
    rng = np.random.default_rng(seed)
    out, cin = {}, fin
    for name, n in sizes:
        out[name] = (rng.normal(0, 0.1, size=(cin, n)).astype(np.float32),
                     rng.normal(0, 0.1, size=(n,)).astype(np.float32))
        cin = n
    return out


def build_tf_keras_vgg(weights, input_shape=(None, None, 3), name="vgg16_narrow"):
    """The narrow VGG16 conv base in tf_keras with the exact Keras layer names, weights set."""
    import tf_keras
    from tf_keras import layers
    inp = layers.Input(shape=input_shape, name="input_1")
    x = inp
    for lname, kind, _, cout in layer_plan():
        if kind == "conv":
            x = layers.Conv2D(cout, (3, 3), activation="relu", padding="same", name=lname)(x)
        else:
            x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=lname)(x)
    model = tf_keras.Model(inp, x, name=name)
    for lname, (k, b) in weights.items():
        model.get_layer(lname).set_weights([k, b])
    return model


def sanitise_error(exc, root):
    """Exception text without machine-specific parts (absolute paths, object addresses)."""
    text = f"{type(exc).__name__}: {exc}"
    text = text.replace(os.path.abspath(root) + os.sep, "")
    return re.sub(r"0x[0-9a-fA-F]+", "0x…", text)
