import Foundation
import ImageInput
import Storage
import VGG16
import Wire

/// One split of the job ("train", "validation") with its images in Keras order.
public struct ExtractionSplit: Sendable {
    public var name: String
    /// The images, compactly (one byte buffer of filenames, offsets and labels).
    public var entries: ImageList
}

/// Everything an extraction reads before computing: the scanned image trees, the weights' identity, the feature
/// shape, and the attributes of the output file.
public struct ExtractionInputs: Sendable {
    public var classNames: [String]
    public var splits: [ExtractionSplit]
    /// SHA-256 of the weights file's bytes, lowercase hex; identifies the weights on the wire and in the journal.
    public var weightsSHA256: String
    public var weightsSize: Int
    /// Output shape per image, (h, w, c) in NHWC order.
    public var featureShape: [Int]
    public var attributes: FeatureFileAttributes

    public var featureCount: Int { featureShape.reduce(1, *) }
    public var imageCount: Int { splits.reduce(0) { $0 + $1.entries.count } }

    /// Scans the directories (Keras order) or reads the lists, hashes and checks the weights, and works out the
    /// feature shape.
    ///
    /// Throws `ExtractionError.badInput` naming the directory or file at fault (for a list, its line and column).
    /// The validation tree or list must have the same classes as the training one, or labels would mean different
    /// things in the two splits. The files a list names are not looked at here (see `ImageListFile`).
    public static func load(_ request: ExtractionRequest) throws -> ExtractionInputs {
        let (classNames, splits) = try request.trainList != nil ? loadLists(request) : loadTrees(request)
        return try load(request, classNames: classNames, splits: splits)
    }

    private static func loadLists(_ request: ExtractionRequest) throws -> ([String], [ExtractionSplit]) {
        func read(_ path: String, _ role: String) throws -> (classNames: [String], images: ImageList) {
            do {
                return try ImageListFile.read(path, directory: request.listDirectory)
            } catch let error as ImageListError {
                throw ExtractionError(.badInput, "\(role) list \(error.description)")
            }
        }
        let train = try read(request.trainList!, "training")
        var splits = [ExtractionSplit(name: "train", entries: train.images)]
        if let validationList = request.validationList {
            let validation = try read(validationList, "validation")
            guard validation.classNames == train.classNames else {
                throw ExtractionError(
                    .badInput,
                    "validation list \(validationList) has classes [\(validation.classNames.joined(separator: ", "))], "
                        + "the training list has [\(train.classNames.joined(separator: ", "))]")
            }
            splits.append(ExtractionSplit(name: "validation", entries: validation.images))
        }
        return (train.classNames, splits)
    }

    private static func loadTrees(_ request: ExtractionRequest) throws -> ([String], [ExtractionSplit]) {
        func scan(_ directory: String, _ role: String) throws -> DirectoryScan {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
                throw ExtractionError(.badInput, "\(role) directory \(directory) does not exist")
            }
            guard isDirectory.boolValue else {
                throw ExtractionError(
                    .badInput, "\(role) directory \(directory) is not a directory (a tree of one directory per class)")
            }
            let scan: DirectoryScan
            do { scan = try DirectoryScan.scan(directory: directory) } catch {
                throw ExtractionError(.badInput, "cannot scan \(role) directory \(directory): \(error)")
            }
            guard !scan.entries.isEmpty else {
                let classes = scan.classNames.isEmpty ? "no class directories" : "no images in its class directories"
                throw ExtractionError(.badInput, "\(role) directory \(directory) is empty: \(classes)")
            }
            return scan
        }
        let train = try scan(request.trainDirectory, "training")
        guard !train.classNames.isEmpty else {
            throw ExtractionError(.badInput, "training directory \(request.trainDirectory) has no class directories")
        }
        var splits = [ExtractionSplit(name: "train", entries: train.entries)]
        if let validationDirectory = request.validationDirectory {
            let validation = try scan(validationDirectory, "validation")
            guard validation.classNames == train.classNames else {
                throw ExtractionError(
                    .badInput,
                    "validation directory \(validationDirectory) has classes [\(validation.classNames.joined(separator: ", "))], "
                        + "the training directory has [\(train.classNames.joined(separator: ", "))]")
            }
            splits.append(ExtractionSplit(name: "validation", entries: validation.entries))
        }
        return (train.classNames, splits)
    }

    private static func load(
        _ request: ExtractionRequest, classNames: [String], splits: [ExtractionSplit]
    ) throws -> ExtractionInputs {
        guard FileManager.default.isReadableFile(atPath: request.weightsPath),
            let size = (try? FileManager.default.attributesOfItem(atPath: request.weightsPath))?[.size] as? Int
        else {
            throw ExtractionError(.badInput, "weights file \(request.weightsPath) cannot be read")
        }
        var sha = ""
        let featureShape: [Int]
        do {
            // Loading checks the file (layout, shapes); the shape follows from the layer widths without building
            // a conv base, which would hold its scratch buffers in the coordinator for nothing.
            let weights = try VGG16Weights.load(path: request.weightsPath)
            sha = weights.sha256  // SHA-256 of the file's bytes
            let sides = ConvBase.minimumImageSize...WireLimits.maxImageSide
            guard sides.contains(request.settings.height), sides.contains(request.settings.width) else {
                throw ExtractionError(
                    .badInput,
                    "image size \(request.settings.height)x\(request.settings.width) is outside "
                        + "\(sides.lowerBound)...\(sides.upperBound) per side (VGG16's smallest input, the "
                        + "workers' largest)")
            }
            var height = request.settings.height
            var width = request.settings.width
            for _ in 0..<request.layer.blockCount {
                height /= 2
                width /= 2
            }
            featureShape = [height, width, weights.layers[request.layer.convLayerCount - 1].outChannels]
        } catch let error as ExtractionError {
            throw error
        } catch {
            throw ExtractionError(.badInput, "\(error)")
        }
        let attributes = FeatureFileAttributes(
            imageHeight: request.settings.height, imageWidth: request.settings.width,
            preprocess: request.settings.preprocessing.rawValue, interpolation: request.settings.interpolation.rawValue,
            layer: request.layer.rawValue, weightsSHA256: sha)
        return ExtractionInputs(
            classNames: classNames, splits: splits, weightsSHA256: sha, weightsSize: size,
            featureShape: featureShape, attributes: attributes)
    }

    /// The journal manifest for these inputs with `shardSize` images per shard.
    public func manifest(request: ExtractionRequest, shardSize: Int) -> JournalManifest {
        JournalManifest(
            classNames: classNames,
            splits: splits.map {
                JournalSplit(
                    name: $0.name, imageCount: $0.entries.count,
                    fileListSHA256: Self.fileListHash($0.entries))
            },
            weightsSHA256: weightsSHA256, imageHeight: request.settings.height, imageWidth: request.settings.width,
            preprocessing: request.settings.preprocessing.rawValue,
            interpolation: request.settings.interpolation.rawValue, layer: request.layer.rawValue,
            featureShape: featureShape, shardSize: shardSize)
    }

    /// `ShardJournal.fileListHash` of `images`, from their bytes.
    static func fileListHash(_ images: ImageList) -> String {
        var hasher = FileListHasher()
        for index in images.indices {
            images.withFilenameBytes(at: index) { hasher.add(filename: $0, label: images.labels[index]) }
        }
        return hasher.finish()
    }
}
