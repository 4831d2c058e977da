"""Loads a FINETUNED.h5 written by Bottleneck into the Keras fine-tuning structure and compares Keras'
predictions with Bottleneck's (development check; needs tf_keras).

    FINETUNED_KERAS_CHECK_DIR=/tmp/ftcheck swift test --skip-build --filter FineTunedKerasExport
    python Tests/FineTuningTests/keras_finetuned_check.py /tmp/ftcheck

The directory holds FINETUNED.h5 and check.h5 (/input: preprocessed images [N,H,W,3], /probabilities:
Bottleneck's [N,C]). Exit 0 when every probability agrees within 1e-5.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import h5py
import numpy as np
import tf_keras
from tf_keras import layers


def main(directory):
    model_path = os.path.join(directory, "FINETUNED.h5")
    with h5py.File(model_path) as f:
        h, w = int(f.attrs["bottleneck_image_height"]), int(f.attrs["bottleneck_image_width"])
        classes = len(f.attrs["bottleneck_class_names"])
        widths = [f[f"block{b}_conv1/block{b}_conv1/kernel:0"].shape[3] for b in range(1, 6)]
        hidden = f["sequential/dense/kernel:0"].shape[1]
    with h5py.File(os.path.join(directory, "check.h5")) as f:
        x, ours = f["input"][:], f["probabilities"][:]
    if widths == [64, 128, 256, 512, 512]:
        base = tf_keras.applications.VGG16(include_top=False, weights=None, input_shape=(h, w, 3))
    else:  # the narrow test network: the same layers and names, other widths
        inp = layers.Input(shape=(h, w, 3), name="input_1")
        y = inp
        for b, (n, width) in enumerate(zip((2, 2, 3, 3, 3), widths), start=1):
            for k in range(1, n + 1):
                y = layers.Conv2D(width, (3, 3), activation="relu", padding="same", name=f"block{b}_conv{k}")(y)
            y = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{b}_pool")(y)
        base = tf_keras.Model(inp, y, name="vgg16")
    top = tf_keras.Sequential([layers.Flatten(input_shape=base.output_shape[1:]),
                               layers.Dense(hidden, activation="relu"), layers.Dropout(0.5),
                               layers.Dense(classes, activation="softmax")])
    model = tf_keras.Model(base.input, top(base.output))
    model.load_weights(model_path)
    keras = model.predict(x, verbose=0)
    worst = float(np.abs(keras - ours).max())
    print(f"{model_path}: {len(x)} images, max |Keras - Bottleneck| = {worst:.3g}")
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
