"""Golden values for the softmax top model -> keras/top_model.h5 and keras/top_model_keras_save_weights.h5.

Model (tf_keras, the classic bottleneck recipe):
    Flatten(input_shape=(2,2,8)) -> Dense(256, relu) -> Dropout(0.5) -> Dense(3, softmax)
Training-step goldens use the same model with Dropout(0.0) (Keras returns its input unchanged for
rate 0, so the step is deterministic); checked equal to a model without the Dropout layer.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import h5py
import numpy as np

from common import KERAS_DIR

OUT = os.path.join(KERAS_DIR, "top_model.h5")
OUT_SAVE = os.path.join(KERAS_DIR, "top_model_keras_save_weights.h5")
INPUT_SHAPE = (2, 2, 8)
HIDDEN, CLASSES, BATCH = 256, 3, 10
LAYERS = ("dense", "dense_1")


def initial_weights(seed=7):
    rng = np.random.default_rng(seed)
    fin = int(np.prod(INPUT_SHAPE))
    lim1, lim2 = np.sqrt(6 / (fin + HIDDEN)), np.sqrt(6 / (HIDDEN + CLASSES))
    return [rng.uniform(-lim1, lim1, (fin, HIDDEN)).astype(np.float32),
            rng.normal(0.01, 0.05, (HIDDEN,)).astype(np.float32),
            rng.uniform(-lim2, lim2, (HIDDEN, CLASSES)).astype(np.float32),
            rng.normal(0.0, 0.05, (CLASSES,)).astype(np.float32)]


def build(dropout_rate, with_dropout=True):
    import tf_keras
    from tf_keras import layers
    stack = [layers.Flatten(input_shape=INPUT_SHAPE, name="flatten"),
             layers.Dense(HIDDEN, activation="relu", name="dense")]
    if with_dropout:
        stack.append(layers.Dropout(dropout_rate, name="dropout"))
    stack.append(layers.Dense(CLASSES, activation="softmax", name="dense_1"))
    return tf_keras.Sequential(stack, name="sequential")


def write_weights(g, ws):
    for i, layer in enumerate(LAYERS):
        g.create_dataset(f"{layer}/kernel", data=ws[2 * i])
        g.create_dataset(f"{layer}/bias", data=ws[2 * i + 1])


def main():
    import tensorflow as tf
    import tf_keras
    tf_keras.utils.set_random_seed(0)
    w0 = initial_weights()
    rng = np.random.default_rng(11)
    X = np.abs(rng.normal(0.0, 1.5, (BATCH,) + INPUT_SHAPE)).astype(np.float32)
    X[rng.uniform(size=X.shape) < 0.3] = 0.0  # ReLU/pool-like features: non-negative, some zeros
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 0, 1, 2], np.int32)
    Y = np.eye(CLASSES, dtype=np.float32)[labels]

    # Inference with the real (Dropout 0.5) model.
    model = build(0.5)
    model.set_weights(w0)
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    probs = model.predict(X, verbose=0)
    loss_eval, acc_eval = model.evaluate(X, Y, batch_size=BATCH, verbose=0)
    per_sample = tf_keras.losses.categorical_crossentropy(Y, probs).numpy()  # clipped-probability path
    logits = (np.maximum(X.reshape(BATCH, -1) @ w0[0] + w0[1], 0) @ w0[2] + w0[3]).astype(np.float32)
    hidden = tf_keras.Model(model.input, model.get_layer("dense").output).predict(X, verbose=0)
    logits_keras = hidden @ w0[2] + w0[3]
    model.save_weights(OUT_SAVE)
    reread = build(0.5)
    reread.load_weights(OUT_SAVE)
    assert all(np.array_equal(a, b) for a, b in zip(reread.get_weights(), w0))

    # Gradient of the mean loss at w0 (dropout-free), as train_on_batch computes it.
    nd = build(0.0, with_dropout=False)
    nd.set_weights(w0)
    with tf.GradientTape() as tape:
        out = nd(X, training=True)
        loss = tf.reduce_mean(tf_keras.losses.categorical_crossentropy(Y, out))
    grads = [g.numpy() for g in tape.gradient(loss, nd.trainable_weights)]

    optimizers = {
        "sgd": (lambda: tf_keras.optimizers.SGD(learning_rate=0.01),
                dict(learning_rate=0.01, momentum=0.0, nesterov=0)),
        "sgd_nesterov": (lambda: tf_keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, nesterov=True),
                         dict(learning_rate=0.01, momentum=0.9, nesterov=1)),
        "rmsprop": (lambda: tf_keras.optimizers.RMSprop(learning_rate=0.001),
                    dict(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=0)),
        "adam": (lambda: tf_keras.optimizers.Adam(learning_rate=0.001),
                 dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=0)),
    }
    steps = {}
    for name, (make, hp) in optimizers.items():
        snap, losses = [], []
        for variant in ("dropout0", "nodropout"):
            m = build(0.0, with_dropout=(variant == "dropout0"))
            m.set_weights(w0)
            m.compile(optimizer=make(), loss="categorical_crossentropy")
            got, ls = [], []
            for _ in range(2):
                ls.append(float(m.train_on_batch(X, Y)))
                got.append([a.copy() for a in m.get_weights()])
            if variant == "dropout0":
                snap, losses = got, ls
            else:
                for a, b in zip(snap, got):
                    for x, y in zip(a, b):
                        assert np.array_equal(x, y), f"{name}: Dropout(0.0) differs from no Dropout"
        steps[name] = (snap, losses, hp)
    # Sanity: plain SGD step 1 is w0 - 0.01 * grad.
    for a, b, g in zip(steps["sgd"][0][0], w0, grads):
        assert np.allclose(a, b - np.float32(0.01) * g, rtol=0, atol=1e-6)

    with h5py.File(OUT + ".tmp", "w", libver="earliest") as f:
        f.attrs["generator"] = "Tests/Fixtures/gen_top_model.py"
        f.attrs["tf_keras_version"] = tf_keras.__version__
        f.attrs["model"] = ("Sequential: Flatten(input_shape=(2,2,8)) -> Dense(256, relu) -> Dropout(0.5) -> "
                            "Dense(3, softmax); loss categorical_crossentropy")
        f.attrs["train_steps_model"] = "same Sequential with Dropout(0.0) (identity); equal to no Dropout layer"
        f.create_dataset("X", data=X)
        f.create_dataset("Y", data=Y)
        f.create_dataset("labels", data=labels)
        write_weights(f.create_group("initial"), w0)
        f.create_dataset("predictions", data=probs)
        f.create_dataset("logits", data=logits_keras.astype(np.float32))
        f.create_dataset("loss_evaluate", data=np.float32(loss_eval))
        f.create_dataset("accuracy_evaluate", data=np.float32(acc_eval))
        f.create_dataset("loss_per_sample", data=per_sample.astype(np.float32))
        write_weights(f.create_group("gradients"), grads)
        for name, (snap, losses, hp) in steps.items():
            g = f.create_group(name)
            for k, v in hp.items():
                g.attrs[k] = v
            g.create_dataset("train_on_batch_loss", data=np.array(losses, np.float32))
            for i, ws in enumerate(snap, start=1):
                write_weights(g.create_group(f"step{i}"), ws)
    os.replace(OUT + ".tmp", OUT)
    print(f"top model: evaluate loss {loss_eval:.7f} acc {acc_eval}; per-sample mean {per_sample.mean():.7f}; "
          f"numpy logits vs keras max diff {np.abs(logits - logits_keras).max():.2e}", file=sys.stderr)
    for name, (_, losses, _) in steps.items():
        print(f"  {name}: train_on_batch losses {losses}", file=sys.stderr)


if __name__ == "__main__":
    main()
