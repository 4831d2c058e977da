"""tf-keras' side of `make bench-finetune`: the Keras recipe's fine-tuning script, timed per epoch.

VGG16 (include_top=False, 150x150) with the VGG16 weights file and the top model written by `train` loaded,
the layers up to block4_pool frozen, SGD(lr 1e-4, momentum 0.9), categorical cross-entropy,
ImageDataGenerator(shear_range=0.2, zoom_range=0.2, horizontal_flip=True, caffe preprocessing),
flow_from_directory (nearest interpolation, shuffled), `fit`. Prints one JSON object (the last line of
standard output; flow_from_directory prints a line before it): the seconds of every
epoch, images, batch, threads, versions.

    keras_finetune_epoch.py --tree DIR --weights VGG16.h5 --top MODEL.h5 --epochs 2 --batch 32 --threads 2
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--top", required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=150)
    a = parser.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    import tf_keras
    from tf_keras import layers
    from tf_keras.applications.vgg16 import preprocess_input
    from tf_keras.preprocessing.image import ImageDataGenerator

    generator = ImageDataGenerator(
        shear_range=0.2, zoom_range=0.2, horizontal_flip=True, preprocessing_function=preprocess_input)
    flow = generator.flow_from_directory(
        a.tree, target_size=(a.size, a.size), batch_size=a.batch, class_mode="categorical",
        interpolation="nearest", shuffle=True, seed=0)
    classes = flow.num_classes

    base = tf_keras.applications.VGG16(include_top=False, weights=None, input_shape=(a.size, a.size, 3))
    notes = []
    try:
        base.load_weights(a.weights)
    except Exception as error:  # the timing does not depend on the starting values
        notes.append(f"VGG16 weights not loaded ({error}); random initialisation")
    top = tf_keras.Sequential([layers.Flatten(input_shape=base.output_shape[1:]),
                               layers.Dense(256, activation="relu"), layers.Dropout(0.5),
                               layers.Dense(classes, activation="softmax")])
    try:
        top.load_weights(a.top)
    except Exception as error:
        notes.append(f"top model not loaded ({error}); random initialisation")
    model = tf_keras.Model(base.input, top(base.output))
    for layer in model.layers[:15]:  # up to block4_pool
        layer.trainable = False
    model.compile(loss="categorical_crossentropy",
                  optimizer=tf_keras.optimizers.SGD(learning_rate=1e-4, momentum=0.9), metrics=["accuracy"])

    class EpochTimer(tf_keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    timer = EpochTimer()
    model.fit(flow, epochs=a.epochs, verbose=0, callbacks=[timer])
    json.dump({"epoch_seconds": timer.seconds, "images": flow.samples, "batch": a.batch, "threads": a.threads,
               "tf_keras": tf_keras.__version__, "tensorflow": tf.__version__, "notes": notes}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
