"""ONNX Runtime on the same VGG16 conv base, weights and images as `extract`, for `make bench`.

Usage: ort_runner.py --weights W.h5 --features F.h5 --tree DIR --size N [--threads 2] [--batch 8]

Builds the conv base (13 conv 3x3 'same' + ReLU, 5 max-pools 2x2/2; NCHW) with onnx.helper from the
official-layout Keras weights (/<layer>/<layer>_W_1:0 HWIO, _b_1:0). Decodes the images the feature
file lists (Pillow, nearest resize as Keras' load_img, caffe preprocessing) before timing: the timed
part is inference on float32 input already decoded. Runs ORT with `threads` intra-op threads and one
inter-op thread, warms up with one batch, then times every image in batches of `batch`. Then checks
ORT's features against the feature file (same images, NCHW transposed to NHWC) and prints one JSON line.
"""
import argparse
import json
import os
import time

import h5py
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

BLOCKS = [2, 2, 3, 3, 3]
CAFFE_MEANS_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def conv_layers(weights_path):
    with h5py.File(weights_path, "r") as weights:
        layers = []
        for block, count in enumerate(BLOCKS, start=1):
            for conv in range(1, count + 1):
                name = f"block{block}_conv{conv}"
                group = weights[name]
                kernel = np.array(group[f"{name}_W_1:0"], dtype=np.float32)  # HWIO
                bias = np.array(group[f"{name}_b_1:0"], dtype=np.float32)
                layers.append((name, kernel.transpose(3, 2, 0, 1).copy(), bias))
        return layers


def build_model(layers, size):
    nodes, initializers = [], []
    current = "input"
    index = 0
    for block, count in enumerate(BLOCKS, start=1):
        for _ in range(count):
            name, kernel, bias = layers[index]
            index += 1
            initializers += [numpy_helper.from_array(kernel, name + "_W"), numpy_helper.from_array(bias, name + "_b")]
            nodes.append(helper.make_node("Conv", [current, name + "_W", name + "_b"], [name + "_conv"],
                                          kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
            nodes.append(helper.make_node("Relu", [name + "_conv"], [name]))
            current = name
        pool = f"block{block}_pool"
        nodes.append(helper.make_node("MaxPool", [current], [pool], kernel_shape=[2, 2], strides=[2, 2]))
        current = pool
    graph = helper.make_graph(
        nodes, "vgg16_conv_base",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info(current, TensorProto.FLOAT, None)],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def load_images(tree, filenames, size):
    batch = np.empty((len(filenames), 3, size, size), dtype=np.float32)
    for index, filename in enumerate(filenames):
        with Image.open(os.path.join(tree, filename)) as image:
            rgb = np.asarray(image.convert("RGB").resize((size, size), Image.NEAREST), dtype=np.float32)
        bgr = rgb[..., ::-1] - CAFFE_MEANS_BGR
        batch[index] = bgr.transpose(2, 0, 1)
    return batch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", required=True)
    parser.add_argument("--features", required=True)
    parser.add_argument("--tree", required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    with h5py.File(args.features, "r") as features_file:
        filenames = [f.decode() if isinstance(f, bytes) else f for f in features_file["train/filenames"][:]]
        ours = np.array(features_file["train/features"], dtype=np.float32)
    images = load_images(args.tree, filenames, args.size)

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    model = build_model(conv_layers(args.weights), args.size)
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    batch = args.batch
    session.run(None, {"input": images[:batch]})  # warm-up
    outputs = []
    start = time.perf_counter()
    cpu_start = time.process_time()
    for first in range(0, len(images), batch):
        outputs.append(session.run(None, {"input": images[first:first + batch]})[0])
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    theirs = np.concatenate(outputs).transpose(0, 2, 3, 1)

    scale = float(np.abs(theirs).max())
    error = float(np.abs(theirs - ours).max()) / scale if scale > 0 else float("inf")
    print(json.dumps({
        "images": len(images), "seconds": seconds, "cpu_seconds": cpu_seconds, "images_per_second": len(images) / seconds,
        "max_relative_error_vs_extract": error, "onnxruntime": ort.__version__,
        "threads": args.threads, "batch": batch,
    }))


if __name__ == "__main__":
    main()
