import ArgumentParser
import CLI
import FineTuning
import Foundation
import ImageFeatures
import ImageInput
import TopModel
import VGG16

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Classify images by class name with a trained model.",
        discussion: """
            Images are prepared exactly as for the features the model was trained on (image size,
            interpolation, preprocessing and feature layer are read from MODEL.h5), and the weights file
            must be the one those features came from. A directory is searched recursively for images.
            An image that cannot be read gets an error entry; the others are still answered.
            """)

    @Option(
        name: .long,
        help: "VGG16 weights, the same file the training features came from (default: Keras' cache file, fetched).")
    var weights: String?

    @Option(name: .long, help: "Model written by `train`, or by `finetune` (then --weights is not needed).")
    var model: String

    @Argument(help: "Images or directories.")
    var paths: [String]

    @Option(name: .long, help: "Classes to show per image, best first.")
    var topK = 3

    @Flag(name: .long, help: "Print a JSON array: one object per image with `path` and `predictions` or `error`.")
    var json = false

    @OptionGroup var common: CommonOptions

    struct Answer: Encodable {
        struct Prediction: Encodable {
            let `class`: String
            let probability: Float
        }
        let path: String
        let predictions: [Prediction]?
        let error: String?
    }

    func validate() throws {
        guard topK >= 1 else { throw ValidationError("--top-k must be at least 1") }
    }

    func run() throws {
        common.bootstrapLogging()
        common.chooseBLASKernels()
        // A fine-tuned model (written by `finetune`) carries its own conv weights; a top model needs the file
        // its features came from.
        let fineTuned = FineTunedModel.isFineTunedModel(model) ? try FineTunedModel.load(model) : nil
        let topModel = try fineTuned?.top ?? TopModel.load(model)
        let provenance = topModel.provenance
        let vgg: VGG16Weights
        if let fineTuned {
            vgg = try fineTuned.convWeights()
        } else {
            let weights = try weights ?? DefaultWeights.path()
            vgg = try VGG16Weights.load(path: weights)
            guard vgg.sha256 == provenance.weightsSHA256 else {
                throw ReportedFailure(
                    "\(weights): sha256 \(vgg.sha256.prefix(12))…, but \(model) was trained on features of weights "
                        + "\(provenance.weightsSHA256.prefix(12))…; use the weights the features came from")
            }
        }
        guard let layer = PoolingLayer(rawValue: provenance.featureLayer),
            let interpolation = Interpolation(rawValue: provenance.interpolation),
            let preprocessing = Preprocessing(rawValue: provenance.preprocess),
            let precision = ConvPrecision(rawValue: provenance.precision)
        else {
            throw ReportedFailure(
                "\(model): unknown feature layer, interpolation, preprocessing or precision in its attributes")
        }
        let settings = ImageSettings(
            height: provenance.imageHeight, width: provenance.imageWidth, interpolation: interpolation,
            preprocessing: preprocessing)
        let extractor = try FeatureExtractor(
            weights: vgg, settings: settings, layer: layer, threads: ProcessInfo.processInfo.activeProcessorCount,
            precision: precision)
        guard extractor.featureShape == topModel.featureShape else {
            throw ReportedFailure(
                "\(model) expects features \(topModel.featureShape), the weights give \(extractor.featureShape)")
        }

        var answers: [Answer] = []
        let files = try Self.imageFiles(paths)
        for batch in stride(from: 0, to: files.count, by: 16).map({ Array(files[$0..<min(files.count, $0 + 16)]) }) {
            var readable: [(filename: String, bytes: [UInt8])] = []
            var readErrors: [String: String] = [:]
            for path in batch {
                if let data = FileManager.default.contents(atPath: path) {
                    readable.append((filename: path, bytes: [UInt8](data)))
                } else {
                    readErrors[path] = "\(path): cannot be read"
                }
            }
            var results: [String: Result<[Float], ImageDecodeError>] = [:]
            for (image, result) in zip(readable, extractor.extract(readable)) { results[image.filename] = result }
            for path in batch {
                switch results[path] {
                case .success(let features)?:
                    let best = try topModel.predict(features: features, topK: topK)[0]
                    answers.append(
                        Answer(
                            path: path,
                            predictions: best.map { .init(class: $0.className, probability: $0.probability) },
                            error: nil))
                case .failure(let error)?:
                    answers.append(Answer(path: path, predictions: nil, error: error.description))
                case nil:
                    answers.append(
                        Answer(path: path, predictions: nil, error: readErrors[path] ?? "\(path): cannot be read"))
                }
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(answers), as: UTF8.self))
        } else {
            for answer in answers {
                print(answer.path)
                if let predictions = answer.predictions {
                    for p in predictions { print("  " + String(format: "%.4f", p.probability) + "  " + p.class) }
                } else {
                    print("  error: \(answer.error ?? "")")
                }
            }
        }
        if answers.contains(where: { $0.error != nil }) { throw ExitCode(1) }
    }

    /// Files named directly, and the images below named directories (recursively, in path order, with
    /// Keras' extension allow-list).
    static func imageFiles(_ paths: [String]) throws -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                files.append(path)  // answered with an error entry
                continue
            }
            guard isDirectory.boolValue else {
                files.append(path)
                continue
            }
            guard let walker = FileManager.default.enumerator(atPath: path) else { continue }
            var found: [String] = []
            for case let relative as String in walker where DirectoryScan.hasAllowedSuffix(relative) {
                found.append((path as NSString).appendingPathComponent(relative))
            }
            files += found.sorted(by: CodePointOrder.less)
        }
        return files
    }
}
