"""tf-keras' `fit` time per epoch for the top model, the counterpart of `bottleneck-dev bench-topmodel`.

Same work: 10,000 feature vectors of 4x4x512, 3 classes (label row % 3), Flatten -> Dense(256, relu) ->
Dropout(0.5) -> Dense(3, softmax), categorical cross-entropy, SGD (learning rate 0.01), batch 100, shuffled,
no validation; TensorFlow's intra- and inter-op pools limited to --threads threads. With --features, the
features are read from a raw little-endian float32 file [rows, 8192] (`bottleneck-dev bench-topmodel
--features-out FILE` writes the benchmark's own), so both sides train on the same numbers; without it they
are drawn here with the same distribution (a third exactly zero, the rest uniform in (0.66, 2)).
Prints one JSON line: tf-keras' version, the wall-clock and the process' CPU seconds of every epoch, the losses.

Run with the tf-keras venv that `make bench` creates (scripts/bench/tf-venv.sh):

    bench-output/.venv-tf/bin/python scripts/topmodel_keras_epoch_time.py [--epochs 4] [--threads 2] \
        [--features FILE]
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=4)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--rows", type=int, default=10_000)
parser.add_argument("--features", help="raw float32 features [rows, 8192]")
args = parser.parse_args()

import numpy as np
import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(args.threads)
tf.config.threading.set_inter_op_parallelism_threads(args.threads)
import tf_keras
from tf_keras import layers

shape = (4, 4, 512)
if args.features:
    x = np.fromfile(args.features, dtype="<f4").reshape((-1,) + shape)
    rows = x.shape[0]
else:
    rows = args.rows
    rng = np.random.default_rng(0)
    u = rng.uniform(size=(rows,) + shape).astype(np.float32)
    x = np.where(u < 0.33, 0, u * 2).astype(np.float32)
y = np.eye(3, dtype=np.float32)[np.arange(rows) % 3]

model = tf_keras.Sequential([
    layers.Flatten(input_shape=shape),
    layers.Dense(256, activation="relu"),
    layers.Dropout(0.5),
    layers.Dense(3, activation="softmax"),
])
model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])


class EpochTimer(tf_keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []
        self.cpu_seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)
        self.cpu_seconds.append(time.process_time() - self.cpu_start)


timer = EpochTimer()
history = model.fit(x, y, batch_size=100, epochs=args.epochs, shuffle=True, verbose=0, callbacks=[timer])
print(json.dumps({
    "engine": f"tf_keras {tf_keras.__version__} (tensorflow {tf.__version__})", "rows": rows,
    "threads": args.threads, "batch": 100, "zero_fraction": round(float(np.mean(x == 0)), 4),
    "epoch_seconds": [round(s, 4) for s in timer.seconds],
    "epoch_cpu_seconds": [round(s, 4) for s in timer.cpu_seconds],
    "loss": [round(float(v), 5) for v in history.history["loss"]],
}))
