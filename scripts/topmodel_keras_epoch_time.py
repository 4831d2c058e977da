"""tf_keras time per epoch for the top model, to compare with the TopModel benchmark.

Same work as Tests/Benchmarks/TopModelBenchmark.swift: 10,000 feature vectors of 4x4x512, 3 classes,
Flatten -> Dense(256, relu) -> Dropout(0.5) -> Dense(3, softmax), categorical cross-entropy, SGD (lr 0.01),
batch 100, shuffle, no validation; TensorFlow limited to THREADS threads (default 2).

    /work/venv-keras/bin/python scripts/topmodel_keras_epoch_time.py [EPOCHS] [THREADS]
"""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
EPOCHS = int(sys.argv[1]) if len(sys.argv) > 1 else 4
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 2

import numpy as np
import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(THREADS)
tf.config.threading.set_inter_op_parallelism_threads(THREADS)
import tf_keras
from tf_keras import layers

rows, shape = 10_000, (4, 4, 512)
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

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


timer = EpochTimer()
model.fit(x, y, batch_size=100, epochs=EPOCHS, shuffle=True, verbose=0, callbacks=[timer])
later = sorted(timer.seconds[1:]) or timer.seconds
print(f"tf_keras {tf_keras.__version__}: {rows} rows x {shape}, batch 100, sgd, {THREADS} threads; "
      f"epoch seconds {' '.join(f'{s:.3f}' for s in timer.seconds)}; "
      f"median after the first {later[len(later) // 2]:.3f}, min {min(later):.3f}")
