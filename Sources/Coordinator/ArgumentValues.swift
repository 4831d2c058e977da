import ArgumentParser
import Extraction
import ImageInput
import VGG16

// Settings with a fixed set of values parse as enums: `--help` lists the values and a bad one is a usage error.

extension Preprocessing: ExpressibleByArgument {}
extension Interpolation: ExpressibleByArgument {}
extension PoolingLayer: ExpressibleByArgument {}
extension ConvPrecision: ExpressibleByArgument {}
extension FeatureAssembly: ExpressibleByArgument {}

/// `train --optimizer`: Keras' optimizers, with Keras' defaults.
enum OptimizerName: String, CaseIterable, ExpressibleByArgument {
    case sgd, rmsprop, adam
}

/// `train --class-weight`: how classes are weighed.
enum ClassWeightName: String, CaseIterable, ExpressibleByArgument {
    /// Each class weighs n_samples / (n_classes · count).
    case balanced
}
