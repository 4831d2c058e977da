import CLI
import FileIntegrity
import FineTuning
import ImageInput
import TopModel
import VGG16

/// A `--model` file as `evaluate`, `report` and `extract` take it: a top model written by `train` (MODEL.h5,
/// classifies features of a VGG16 weights file) or a fine-tuned model written by `finetune` (FINETUNED.h5,
/// carries its own convolution weights and is itself the weights file its features are extracted with).
struct ModelArgument {
    let path: String
    /// The classifier of stored features. For a fine-tuned model its provenance names the model file's own hash
    /// as the weights, so that it matches features extracted with `--model` (or `--weights`) FINETUNED.h5.
    let top: TopModel
    /// The fine-tuned model, when the file is one.
    let fineTuned: FineTunedModel?

    init(_ path: String) throws {
        self.path = path
        if FineTunedModel.isFineTunedModel(path) {
            let model = try FineTunedModel.load(path)
            fineTuned = model
            top = model.topOnOwnFeatures
        } else {
            fineTuned = nil
            top = try TopModel.load(path)
        }
    }

    /// The image settings and feature layer the model's features are made with.
    func imageSettings() throws -> (settings: ImageSettings, layer: PoolingLayer) {
        let p = top.provenance
        guard let layer = PoolingLayer(rawValue: p.featureLayer),
            let interpolation = Interpolation(rawValue: p.interpolation),
            let preprocessing = Preprocessing(rawValue: p.preprocess)
        else {
            throw ReportedFailure("\(path): unknown feature layer, interpolation or preprocessing in its attributes")
        }
        return (
            ImageSettings(
                height: p.imageHeight, width: p.imageWidth, interpolation: interpolation, preprocessing: preprocessing),
            layer
        )
    }

    /// The weights file to extract this model's features with: the model file itself when it is fine-tuned
    /// (a `weights` file is then accepted only when its bytes are the model's), otherwise `weights` or Keras'
    /// cached file, which must be the file the model's features came from.
    func weightsPath(_ weights: String?) throws -> String {
        if let fineTuned {
            if let weights {
                let sha = try sha256(of: weights)
                guard sha == fineTuned.fileSHA256 else {
                    throw ReportedFailure(
                        "\(weights) (sha256 \(sha.prefix(12))…) is not the convolution weights of the fine-tuned "
                            + "model \(path); leave --weights out, the model carries its own")
                }
            }
            return path
        }
        let weights = try weights ?? DefaultWeights.path()
        let sha = try sha256(of: weights)
        guard sha == top.provenance.weightsSHA256 else {
            throw ReportedFailure(
                "\(weights): sha256 \(sha.prefix(12))…, but \(path) was trained on features of weights "
                    + "\(top.provenance.weightsSHA256.prefix(12))…; use the weights the features came from")
        }
        return weights
    }

    private func sha256(of file: String) throws -> String {
        do { return try Checksum.sha256Hex(ofFile: file) } catch {
            throw ReportedFailure("\(file): cannot be read (\(error))")
        }
    }
}
