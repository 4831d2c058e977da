"""Checks that tf_keras loads a MODEL.h5 written by the TopModel module and predicts what it predicts.

Development check, not run in CI (needs TensorFlow). Steps:

    TOPMODEL_KERAS_CHECK_DIR=/tmp/kcheck swift test --skip-build --filter KerasLoadCheckExport
    bench-output/.venv-tf/bin/python Tests/TopModelTests/keras_load_check.py /tmp/kcheck

(bench-output/.venv-tf is the tf-keras venv of the benchmarks: scripts/bench/tf-venv.sh creates it.)

The Swift test writes DIR/MODEL.h5 (a trained model) and DIR/check_inputs.h5 (X [N,h,w,c] and the
probabilities the Swift model gives). This script builds the recipe's Sequential from the file's
bottleneck_* attributes, calls model.load_weights(MODEL.h5), predicts X and compares.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import h5py
import numpy as np
import tf_keras
from tf_keras import layers


def main(directory):
    model_path = os.path.join(directory, "MODEL.h5")
    with h5py.File(model_path, "r") as f:
        shape = tuple(int(v) for v in f.attrs["bottleneck_feature_shape"])
        classes = [c.decode() if isinstance(c, bytes) else c for c in f.attrs["bottleneck_class_names"]]
        hidden = f["dense/dense/kernel:0"].shape[1]
    with h5py.File(os.path.join(directory, "check_inputs.h5"), "r") as f:
        x = f["X"][()]
        swift_probabilities = f["probabilities"][()]
    model = tf_keras.Sequential([
        layers.Flatten(input_shape=shape),
        layers.Dense(hidden, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(len(classes), activation="softmax"),
    ])
    print("layers:", [layer.name for layer in model.layers])
    model.load_weights(model_path)
    keras_probabilities = model.predict(x, verbose=0)
    difference = float(np.abs(keras_probabilities - swift_probabilities).max())
    agree = float((keras_probabilities.argmax(1) == swift_probabilities.argmax(1)).mean())
    print(f"classes {classes}, feature shape {shape}, {len(x)} rows")
    print(f"max |keras - swift| probability difference: {difference:.3g}; argmax agreement {agree:.3f}")
    if difference > 1e-5:
        print("FAILED: predictions differ by more than 1e-5")
        return 1
    print("OK: tf_keras load_weights() loads MODEL.h5 and predicts the same")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/kcheck"))
