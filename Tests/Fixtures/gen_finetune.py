"""Golden values for fine-tuning -> keras/finetune.h5 and keras/finetune_keras_save_weights.h5.

1. /augment: ImageDataGenerator.apply_transform for explicit transform parameters (rotation, shifts,
   shear, zoom, flips; fill modes nearest, constant, reflect, wrap; order-1 interpolation) on two
   32x40 images (H != W, so a row/column mix-up shows).
2. /finetune: the Keras fine-tuning structure on the narrow VGG16 (weights/notop-official.h5's values)
   at 48x48: base up to block5_pool, then Flatten -> Dense(256, relu) -> Dropout(0.0) -> Dense(3, softmax),
   layers up to block4_pool frozen. The gradient of the mean categorical cross-entropy w.r.t. the
   trainable weights (block5 convs, dense, dense_1) for a batch of 4 images, and the weights after three
   train_on_batch calls with SGD(1e-4, momentum=0.9) (the losses of all three, the weights of the last).
3. finetune_keras_save_weights.h5: Model.save_weights of that structure (with Dropout(0.5)), the layout
   a FINETUNED.h5 must have.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import h5py
import numpy as np

from common import KERAS_DIR, TREE, build_tf_keras_vgg, conv_weights

OUT = os.path.join(KERAS_DIR, "finetune.h5")
OUT_SAVE = os.path.join(KERAS_DIR, "finetune_keras_save_weights.h5")
AUG_H, AUG_W = 32, 40
AUG_FILES = ("cat/a.jpg", "Zebra/z1.jpg")
FT_H = FT_W = 48
FT_FILES = (("cat/a.jpg", 0), ("dog/p.png", 1), ("Zebra/z1.jpg", 2), ("linked/l1.jpg", 0))
HIDDEN, CLASSES = 256, 3
LEARNING_RATE, MOMENTUM, STEPS = 1e-4, 0.9, 3  # the recipe's SGD
TRAINABLE = ("block5_conv1", "block5_conv2", "block5_conv3", "dense", "dense_1")

# (image index, theta, tx, ty, shear, zx, zy, flip_horizontal, flip_vertical, fill_mode, cval)
CASES = [
    (0, 0, 0, 0, 0, 1, 1, 0, 0, "nearest", 0),
    (0, 30, 0, 0, 0, 1, 1, 0, 0, "nearest", 0),
    (1, -17.5, 0, 0, 0, 1, 1, 0, 0, "nearest", 0),
    (0, 0, 5.5, 0, 0, 1, 1, 0, 0, "nearest", 0),
    (0, 0, 0, -7.25, 0, 1, 1, 0, 0, "nearest", 0),
    (1, 0, 0, 0, 20, 1, 1, 0, 0, "nearest", 0),
    (0, 0, 0, 0, 0, 0.8, 1.25, 0, 0, "nearest", 0),
    (1, 0, 0, 0, 0, 1.3, 0.7, 0, 0, "nearest", 0),
    (0, 0, 0, 0, 0, 1, 1, 1, 0, "nearest", 0),
    (1, 0, 0, 0, 0, 1, 1, 0, 1, "nearest", 0),
    (0, 23, 3.3, -4.1, 11, 0.85, 1.15, 1, 1, "nearest", 0),
    (1, 23, 3.3, -4.1, 11, 1.2, 0.9, 1, 0, "constant", 0),
    (0, -40, -6, 2.5, -15, 1.3, 1.3, 0, 1, "constant", 37.5),
    (1, 23, 3.3, -4.1, 11, 1.2, 0.9, 1, 0, "reflect", 0),
    (0, -40, -6, 2.5, -15, 1.4, 1.3, 0, 1, "reflect", 0),
    (1, 23, 3.3, -4.1, 11, 1.2, 0.9, 0, 1, "wrap", 0),
    (0, -40, -6, 2.5, -15, 1.4, 1.3, 1, 0, "wrap", 0),
    (0, 0, 0, 0, 0.2, 0.8, 1.2, 1, 0, "nearest", 0),  # the recipe's shear=0.2 (degrees), zoom=0.2
]


def load(path, h, w):
    from tf_keras.preprocessing.image import img_to_array, load_img
    return img_to_array(load_img(os.path.join(TREE, "train", path), target_size=(h, w))).astype(np.uint8)


def augment_group(f):
    from tf_keras.preprocessing.image import ImageDataGenerator
    images = np.stack([load(p, AUG_H, AUG_W) for p in AUG_FILES])
    outputs = []
    for (index, theta, tx, ty, shear, zx, zy, fh, fv, mode, cval) in CASES:
        gen = ImageDataGenerator(fill_mode=mode, cval=cval, interpolation_order=1)
        params = dict(theta=theta, tx=tx, ty=ty, shear=shear, zx=zx, zy=zy,
                      flip_horizontal=bool(fh), flip_vertical=bool(fv))
        outputs.append(gen.apply_transform(images[index].astype(np.float32), params).astype(np.float32))
    g = f.create_group("augment")
    g.attrs["source_files"] = np.array(AUG_FILES, dtype=h5py.string_dtype())
    g.attrs["call"] = ("ImageDataGenerator(fill_mode=fill_mode, cval=cval, interpolation_order=1)"
                       ".apply_transform(input[image_index] as float32, {theta, tx, ty, shear, zx, zy, "
                       "flip_horizontal, flip_vertical})")
    g.create_dataset("input", data=images)
    columns = list(zip(*CASES))
    g.create_dataset("image_index", data=np.array(columns[0], np.int32))
    for name, col in zip(("theta", "tx", "ty", "shear", "zx", "zy"), columns[1:7]):
        g.create_dataset(name, data=np.array(col, np.float64))
    g.create_dataset("flip_horizontal", data=np.array(columns[7], np.uint8))
    g.create_dataset("flip_vertical", data=np.array(columns[8], np.uint8))
    g.create_dataset("fill_mode", data=np.array(columns[9], dtype=h5py.string_dtype()))
    g.create_dataset("cval", data=np.array(columns[10], np.float64))
    g.create_dataset("output", data=np.stack(outputs), chunks=(1, AUG_H, AUG_W, 3), compression="gzip",
                     compression_opts=9, shuffle=True)


def top_initial(fin, seed=21):
    rng = np.random.default_rng(seed)
    lim1, lim2 = np.sqrt(6 / (fin + HIDDEN)), np.sqrt(6 / (HIDDEN + CLASSES))
    return [rng.uniform(-lim1, lim1, (fin, HIDDEN)).astype(np.float32),
            rng.normal(0.01, 0.05, (HIDDEN,)).astype(np.float32),
            rng.uniform(-lim2, lim2, (HIDDEN, CLASSES)).astype(np.float32),
            rng.normal(0.0, 0.05, (CLASSES,)).astype(np.float32)]


def build_finetune(dropout_rate):
    """The Keras fine-tuning structure: VGG16 base + Sequential top, frozen up to block4_pool."""
    import tf_keras
    from tf_keras import layers
    base = build_tf_keras_vgg(conv_weights(), input_shape=(FT_H, FT_W, 3))
    top = tf_keras.Sequential([layers.Flatten(input_shape=base.output_shape[1:], name="flatten"),
                               layers.Dense(HIDDEN, activation="relu", name="dense"),
                               layers.Dropout(dropout_rate, name="dropout"),
                               layers.Dense(CLASSES, activation="softmax", name="dense_1")], name="sequential")
    top.set_weights(top_initial(int(np.prod(base.output_shape[1:]))))
    model = tf_keras.Model(base.input, top(base.output), name="finetune")
    for layer in base.layers[:15]:
        layer.trainable = False
    assert base.layers[14].name == "block4_pool"
    return model, base


def by_name(model, arrays):
    """{layer: [kernel, bias]} for the trainable weights, in model.trainable_weights order."""
    names = [w.name for w in model.trainable_weights]
    out = {}
    for name, a in zip(names, arrays):
        layer = name.split("/")[-2] if name.count("/") >= 1 else name
        out.setdefault(layer, []).append(np.asarray(a))
    assert tuple(out) == TRAINABLE, names
    return out


def write_weights(g, ws):
    for layer, (kernel, bias) in ws.items():
        g.create_dataset(f"{layer}/kernel", data=kernel)
        g.create_dataset(f"{layer}/bias", data=bias)


def finetune_group(f):
    import tensorflow as tf
    import tf_keras
    from tf_keras.applications.vgg16 import preprocess_input
    pixels = np.stack([load(p, FT_H, FT_W) for p, _ in FT_FILES])
    labels = np.array([c for _, c in FT_FILES], np.int32)
    x = preprocess_input(pixels.astype(np.float32))
    y = np.eye(CLASSES, dtype=np.float32)[labels]

    model, base = build_finetune(0.0)
    initial = by_name(model, [w.numpy() for w in model.trainable_weights])
    block4 = tf_keras.Model(base.input, base.get_layer("block4_pool").output).predict(x, verbose=0)
    predictions = model.predict(x, verbose=0)

    @tf.function
    def gradient(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf_keras.losses.categorical_crossentropy(y, model(x, training=True)))
        return loss, tape.gradient(loss, model.trainable_weights)

    loss, grads = gradient(tf.constant(x), tf.constant(y))
    gradients = by_name(model, [g.numpy() for g in grads])

    model.compile(optimizer=tf_keras.optimizers.SGD(learning_rate=LEARNING_RATE, momentum=MOMENTUM),
                  loss="categorical_crossentropy")
    losses, steps = [], []
    for _ in range(STEPS):
        losses.append(float(model.train_on_batch(x, y)))
        steps.append(by_name(model, [w.numpy() for w in model.trainable_weights]))
    # Sanity: the first momentum step from m = 0 is w0 - lr * g.
    for layer in TRAINABLE:
        for a, b, g in zip(steps[0][layer], initial[layer], gradients[layer]):
            assert np.allclose(a, b - np.float32(LEARNING_RATE) * g, rtol=0, atol=1e-6), layer

    g = f.create_group("finetune")
    g.attrs["model"] = ("VGG16 narrow base (weights/notop-official.h5) to block5_pool -> Sequential(Flatten, "
                        "Dense(256, relu), Dropout(0.0), Dense(3, softmax)); layers up to block4_pool frozen; "
                        "loss categorical_crossentropy (mean over the batch)")
    g.attrs["learning_rate"], g.attrs["momentum"] = LEARNING_RATE, MOMENTUM
    g.attrs["source_files"] = np.array([p for p, _ in FT_FILES], dtype=h5py.string_dtype())
    g.create_dataset("pixels", data=pixels)
    g.create_dataset("input", data=x)
    g.create_dataset("labels", data=labels)
    g.create_dataset("block4_pool", data=block4)
    g.create_dataset("predictions", data=predictions)
    g.create_dataset("loss", data=np.float32(loss.numpy()))
    g.create_dataset("train_on_batch_loss", data=np.array(losses, np.float32))
    write_weights(g.create_group("initial"), initial)
    write_weights(g.create_group("gradients"), gradients)
    write_weights(g.create_group(f"step{STEPS}"), steps[-1])
    print(f"finetune: loss {float(loss):.7f}, train_on_batch {losses}", file=sys.stderr)
    return model


def main():
    import tensorflow as tf
    import tf_keras
    tf_keras.utils.set_random_seed(0)
    # One thread: oneDNN's multi-threaded conv gradients change the last bits from run to run.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    with h5py.File(OUT + ".tmp", "w", libver="earliest") as f:
        f.attrs["generator"] = "Tests/Fixtures/gen_finetune.py"
        f.attrs["version_tf_keras"] = tf_keras.__version__
        f.attrs["version_tensorflow"] = tf.__version__
        f.attrs["weights_file"] = "weights/notop-official.h5"
        augment_group(f)
        finetune_group(f)
    os.replace(OUT + ".tmp", OUT)
    saved, _ = build_finetune(0.5)
    saved.save_weights(OUT_SAVE + ".tmp.h5")
    os.replace(OUT_SAVE + ".tmp.h5", OUT_SAVE)


if __name__ == "__main__":
    main()
