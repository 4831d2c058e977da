#!/usr/bin/env bash
# `make demo`: extract VGG16 bottleneck features of the bundled example tree with local workers, train
# the top model, evaluate it, write the HTML report, and classify a few images by class name.
#
# Weights: the Keras cache file ($KERAS_HOME/models/, else ~/.keras/models/)
# vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5. When it is missing, the coordinator downloads the official
# file into that cache as Keras does (`bottleneck-coordinator fetch-weights`: hash-checked, resumable). Without a
# network the demo says so and continues with generated (random) weights, labelled as such.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(swift build -c release --show-bin-path)
coordinator="$bin/bottleneck-coordinator"
out=demo-output
mkdir -p "$out"

echo "== weights: the official VGG16 notop file from Keras' cache (downloaded into it when missing, 58 MB)"
if weights=$("$coordinator" fetch-weights); then
    generated=0
    preprocess=caffe
    echo "== weights: $weights (ImageNet, official Keras file)"
else
    generated=1
    weights="$out/generated-vgg16-weights.h5"
    preprocess=rescale   # random weights keep rescaled (0..1) inputs at a trainable scale
    echo "== weights: the official file is not in Keras' cache and could not be downloaded (see above)"
    echo "   (copy it to ~/.keras/models/, or rerun with a network: an interrupted download resumes)."
    echo "   Continuing with GENERATED random weights: the pipeline is real, the features are not ImageNet features."
    "$coordinator" generate-weights --output "$weights" --seed 0
fi

echo
echo "== inspect: checking the example tree"
"$coordinator" inspect examples/shapes/train examples/shapes/validation || true

echo
echo "== extract: bottleneck features of examples/shapes (150x150, $preprocess preprocessing, local workers)"
"$coordinator" extract --train examples/shapes/train --validation examples/shapes/validation \
    --weights "$weights" --output "$out/features.h5" --image-size 150 --preprocess "$preprocess" --restart

echo
echo "== train: the softmax top model on the features"
"$coordinator" train --features "$out/features.h5" --output "$out/model.h5" --epochs 30 --batch-size 20 --seed 0

echo
echo "== evaluate: on the validation split"
"$coordinator" evaluate --features "$out/features.h5" --model "$out/model.h5" --plot "$out/confusion.svg"

echo
echo "== report: one HTML page (history, confusion matrix, per-class metrics, misclassified images)"
"$coordinator" report --features "$out/features.h5" --model "$out/model.h5" --images examples/shapes/validation \
    --output "$out/report.html"

echo
echo "== predict: three validation images, by class name"
"$coordinator" predict --weights "$weights" --model "$out/model.h5" --top-k 3 \
    examples/shapes/validation/circle/000.jpg examples/shapes/validation/square/000.jpg \
    examples/shapes/validation/triangle/000.jpg

echo
echo "Outputs in $out/: features.h5, model.h5 (+ history .csv/.svg), confusion.svg, report.html"
[ "$generated" = 0 ] || echo "(features came from GENERATED weights; see above)"
echo "Report: $(pwd)/$out/report.html"
