import ArgumentParser
import BLAS
import CLI
import Extraction
import FileIntegrity
import Foundation
import ImageInput
import Logging
import Storage
import VGG16
import Wire

/// `bottleneck-coordinator extract`: VGG16 bottleneck features for a labelled image tree, across worker processes.
struct ExtractCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Compute VGG16 bottleneck features for every image of a Keras-style tree into one HDF5 file.",
        discussion: """
            Shards of images go to local worker processes (--workers) and to remote `bottleneck-worker --connect` \
            processes (--bind). Finished shards are journaled in OUTPUT.parts/; rerunning the same command after a \
            crash resumes. Exit status: 0 success, 1 bad input or a refused resume, 2 usage.
            """)

    @Option(help: "Training tree: one directory per class (or --train-list).")
    var train: String?

    @Option(help: "Validation tree with the same classes.")
    var validation: String?

    @Option(
        help: """
            Training images as a CSV list instead of a tree: a header row naming 'filename' and 'class' columns \
            (other columns ignored), one image per row, kept in the file's order (Keras' flow_from_dataframe). A \
            missing file is skipped when read.
            """)
    var trainList: String?

    @Option(help: "Validation images as a CSV list with the same classes (with --train-list).")
    var validationList: String?

    @Option(help: "The directory the lists' filenames are relative to (default: they are paths as they stand).")
    var directory: String?

    @Option(
        help: """
            VGG16 weights (Keras notop/full, Keras 2 or 3 save_weights, or the Theano-era file). Default: Keras' \
            cache file, downloaded as Keras does when missing (see fetch-weights).
            """)
    var weights: String?

    @Option(
        help: """
            A fine-tuned model (FINETUNED.h5 from `finetune`): extract with its convolution weights, its image size, \
            preprocessing and interpolation (instead of --weights).
            """)
    var model: String?

    @Option(help: "The feature file to write (HDF5).")
    var output: String

    @Option(help: "Target size: 150 (square) or HxW (default: 150, or the --model's).")
    var imageSize: String?

    @Option(help: "caffe (RGB→BGR, ImageNet means) or rescale (×1/255) (default: caffe, or the --model's).")
    var preprocess: Preprocessing?

    @Option(help: "nearest (Keras' default) or bilinear (default: nearest, or the --model's).")
    var interpolation: Interpolation?

    @Option(help: "Pooling layer whose output is stored.")
    var layer: PoolingLayer = .block5_pool

    @Option(
        help: ArgumentHelp(
            "The arithmetic of the convolutions: fp32 (default) or bf16 (needs the CPU flag avx512_bf16).",
            discussion: """
                bf16 rounds images and weights to bfloat16 and sums in fp32 (block5_pool features within 2e-2 of \
                fp32, relative). Recorded in the feature file; remote workers must be started with the same \
                --precision, and a resume must use the precision it started with.
                """))
    var precision: ConvPrecision = .fp32

    @Option(
        parsing: .unconditional,
        help: "Local worker processes (default: one per core). 0 with --bind: remote workers only.")
    var workers: Int?

    @Option(
        parsing: .unconditional,
        help: "Convolution threads per local worker (default: cores divided among the workers).")
    var threads: Int?

    @Option(
        help: """
            Also accept remote workers here, e.g. tcp://0.0.0.0:5555 (with --curve-key, or --insecure) or \
            ipc:///tmp/b.sock (repeatable).
            """)
    var bind: [String] = []

    @Option(
        parsing: .unconditional,
        help: "Images per shard, the unit of work, retry and resume (default: images/64, at most 32).")
    var shardSize: Int?

    @Flag(help: "Overwrite --output even when it exists and is not a feature file.")
    var force = false

    @Flag(help: "Discard an existing OUTPUT.parts/ journal and start over.")
    var restart = false

    @Flag(help: "Keep OUTPUT.parts/ after the feature file is written.")
    var keepParts = false

    @Flag(
        help: """
            Workers read the images by path and write the features into OUTPUT.parts/ themselves (they see the \
            images and the output's directory under the same paths).
            """)
    var sharedFilesystem = false

    @Flag(
        help: """
            On a resume, skip checking that the images of finished shards are unchanged (size and modification \
            time).
            """)
    var trustInputs = false

    @Flag(
        help: """
            On a resume, read every finished shard's features and check their SHA-256 before work starts \
            (otherwise only the part files' sizes are checked; hashes are checked when the output is assembled).
            """)
    var verifyParts = false

    @Option(
        help: """
            copy: the output holds the features. virtual: its features map onto the part files in OUTPUT.parts/, \
            which must then stay next to it (no copy of the features; for very large jobs).
            """)
    var assemble: FeatureAssembly = .copy

    @Option(help: "Weights transfers to workers at a time; more workers wait in line.")
    var weightsTransfers = 4

    @Option(
        help: """
            Without --shared-filesystem: MiB of features the coordinator lets be on their way to it (shards out \
            plus results not yet written); shards wait beyond it, so its memory stays bounded whatever the number \
            of workers. Default: a sixteenth of this machine's memory, 512 MiB to 4 GiB.
            """)
    var resultMemory = ExtractionRequest.defaultResultBytesBudget >> 20

    @Flag(help: "Progress and summary as JSON lines on stdout.")
    var jsonProgress = false

    @Option(parsing: .unconditional, help: "Seconds of silence after which a worker's shards are reassigned.")
    var workerTimeout: Double = 10

    @Option(parsing: .unconditional, help: "Seconds between heartbeats in both directions.")
    var heartbeatInterval: Double = 1

    @Option(help: "Weights cache directory of the local workers.")
    var cacheDir: String?

    @OptionGroup var curve: CurveOptions

    @OptionGroup var common: CommonOptions

    func validate() throws {
        switch (train, trainList) {
        case (nil, nil): throw ValidationError("give the training images: --train DIR or --train-list FILE")
        case (.some, .some): throw ValidationError("--train and --train-list exclude each other: give one")
        case (.some, nil):
            if validationList != nil {
                throw ValidationError("--validation-list goes with --train-list (with --train, give --validation DIR)")
            }
            if directory != nil { throw ValidationError("--directory goes with --train-list") }
        case (nil, .some):
            if validation != nil {
                throw ValidationError("--validation goes with --train (with --train-list, give --validation-list)")
            }
        }
        guard let settings = imageSettings else {
            throw ValidationError("--image-size must be N or HxW with positive integers")
        }
        let sides = ConvBase.minimumImageSize...WireLimits.maxImageSide
        if !sides.contains(settings.height) || !sides.contains(settings.width) {
            throw ValidationError(
                "--image-size \(imageSize ?? "150") is out of range: each side must be "
                    + "\(sides.lowerBound)...\(sides.upperBound)")
        }
        if let workers, workers < 0 { throw ValidationError("--workers must be 0 or more") }
        if workers == 0 && bind.isEmpty { throw ValidationError("--workers 0 needs --bind ENDPOINT") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if weightsTransfers < 1 { throw ValidationError("--weights-transfers must be at least 1") }
        if resultMemory < 1 || resultMemory > 1 << 30 { throw ValidationError("--result-memory must be 1...2^30 MiB") }
        if let shardSize, shardSize < 1 || shardSize > 4096 { throw ValidationError("--shard-size must be 1...4096") }
        if workerTimeout <= 0 || heartbeatInterval <= 0 {
            throw ValidationError("--worker-timeout and --heartbeat-interval must be positive")
        }
        try curve.validate(binding: bind)
    }

    private var imageSettings: ImageSettings? {
        let parts = (imageSize ?? "150").lowercased().split(separator: "x").map { Int($0) }
        guard (1...2).contains(parts.count), parts.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        let height = parts[0]!
        let width = parts.count == 2 ? parts[1]! : height
        return ImageSettings(
            height: height, width: width, interpolation: interpolation ?? .nearest, preprocessing: preprocess ?? .caffe)
    }

    /// With `--model`: the fine-tuned model's image settings, after checking that the model is a fine-tuned one
    /// and that the settings given on the command line (if any) are the model's.
    private func modelSettings(_ model: ModelArgument) throws -> ImageSettings {
        guard model.fineTuned != nil else {
            throw ReportedFailure(
                "\(model.path) is not a fine-tuned model (written by `finetune`): a top model carries no "
                    + "convolution weights; give the VGG16 weights with --weights instead")
        }
        let (settings, _) = try model.imageSettings()
        var differences: [String] = []
        if imageSize != nil, let given = imageSettings, given.height != settings.height || given.width != settings.width
        {
            differences.append(
                "image size \(given.height)x\(given.width) (model: \(settings.height)x\(settings.width))")
        }
        if let preprocess, preprocess != settings.preprocessing {
            differences.append("preprocessing \(preprocess.rawValue) (model: \(settings.preprocessing.rawValue))")
        }
        if let interpolation, interpolation != settings.interpolation {
            differences.append("interpolation \(interpolation.rawValue) (model: \(settings.interpolation.rawValue))")
        }
        if !differences.isEmpty {
            throw ReportedFailure(
                "\(model.path) was fine-tuned on images prepared differently: " + differences.joined(separator: "; ")
                    + "; leave these options out to use the model's")
        }
        return settings
    }

    func run() throws {
        func checkOutput(weights: String?) throws {
            try OutputCheck.check(
                output, kind: "feature file",
                inputs: (train.map { [.init($0, role: "training directory")] } ?? [])
                    + (validation.map { [.init($0, role: "validation directory")] } ?? [])
                    + (trainList.map { [.init($0, role: "training list")] } ?? [])
                    + (validationList.map { [.init($0, role: "validation list")] } ?? [])
                    + (directory.map { [.init($0, role: "image directory")] } ?? [])
                    + (weights.map { [.init($0, role: "weights file")] } ?? [])
                    + (model.map { [.init($0, role: "model")] } ?? []),
                overwrite: force, recognises: FeatureFile.isFeatureFile)
        }
        try checkOutput(weights: weights)
        // bf16 on a CPU without the flag: refused before any work, naming it (local workers compute here).
        if precision == .bf16 && workers != 0 { try CPUFeatures.requireBF16() }
        common.bootstrapLogging()
        let logger = Logger(label: "bottleneck.extract")
        // Results (megabytes each) are allocated on one thread and freed on another. With glibc's default of an
        // allocation arena per thread, each arena kept blocks freed into it and the resident size reached about
        // twice what was held; one arena reuses them (bounded by --result-memory, see BENCHMARKS.md).
        limitMallocArenas(to: 1)
        var settings = imageSettings!
        let weights: String
        if let model {
            // The fine-tuned model's file is the weights file: the workers receive its bytes by their hash, and
            // the feature file records that hash as its weights.
            let loaded = try ModelArgument(model)
            settings = try modelSettings(loaded)
            weights = try loaded.weightsPath(self.weights)
        } else {
            weights = try self.weights ?? DefaultWeights.path(progress: jsonProgress ? .json : .automatic)
            if self.weights == nil { try checkOutput(weights: weights) }  // the default weights are an input too
        }
        let progress = ProgressRenderer(jsonProgress ? .json : .automatic)
        var request = ExtractionRequest(
            trainDirectory: train ?? "", validationDirectory: validation, weightsPath: weights, outputPath: output,
            settings: settings, layer: layer, workers: workers, threadsPerWorker: threads,
            bindEndpoints: bind, shardSize: shardSize, restart: restart, keepParts: keepParts,
            sharedFilesystem: sharedFilesystem, workerTimeout: workerTimeout, heartbeatInterval: heartbeatInterval,
            progress: progress.sink, cacheDirectory: cacheDir)
        request.curve = try curve.serverSetup()
        request.trainList = trainList
        request.validationList = validationList
        request.listDirectory = directory
        request.insecure = curve.insecure
        request.trustInputs = trustInputs
        request.verifyParts = verifyParts
        request.assembly = assemble
        request.maxWeightsTransfers = weightsTransfers
        request.resultBytesBudget = resultMemory << 20
        request.precision = precision
        // SIGINT / SIGTERM: the job stops handing out shards, tells its workers, keeps its journal and exits
        // with 128 + the signal; a second one exits at once.
        let stop = ExtractionStop()
        request.stop = stop
        let signals = InterruptSignals { number in
            stop.request(signal: number)
            progress.message(
                "\(InterruptSignals.name(number)): stopping; finished shards are kept (again to exit at once)")
        }
        defer { signals.cancel() }
        let summary: ExtractionSummary
        do { summary = try extractDistributed(request, logger: logger) } catch {
            progress.finish()
            throw error
        }
        if progress.isJSON {
            progress.json(Self.jsonObject(summary))
        } else {
            progress.message(Self.text(summary))
        }
    }

    /// The closing summary for people, e.g. `extracted 100 images (0 skipped) in 4.2 s, 23.8 images/s; …`.
    static func text(_ summary: ExtractionSummary) -> String {
        var text =
            "extracted \(summary.images) images (\(summary.skipped) skipped) in "
            + "\(String(format: "%.1f", summary.seconds)) s, \(String(format: "%.1f", summary.imagesPerSecond)) "
            + "images/s; shards: \(summary.shardsTotal) (\(summary.shardsResumed) resumed, "
            + "\(summary.shardsRetried) retried)\n"
        if summary.shardsChanged > 0 {
            text +=
                "  \(summary.shardsChanged) shards had changed images since the interrupted run and were recomputed\n"
        }
        for (name, count) in summary.perWorker.sorted(by: { $0.key < $1.key }) {
            text += "  \(name): \(count) images\n"
        }
        return text
    }

    /// The closing summary as the `--json-progress` line: `event: summary` and the summary's figures.
    static func jsonObject(_ summary: ExtractionSummary) -> [String: Any] {
        [
            "event": "summary", "images": summary.images, "skipped": summary.skipped,
            "shards_total": summary.shardsTotal, "shards_resumed": summary.shardsResumed,
            "shards_retried": summary.shardsRetried, "duplicates_dropped": summary.duplicatesDropped,
            "seconds": (summary.seconds * 100).rounded() / 100,
            "images_per_second": (summary.imagesPerSecond * 10).rounded() / 10, "per_worker": summary.perWorker,
            "shards_changed": summary.shardsChanged, "weights_transfers": summary.weightsTransfers,
            "extraction_seconds": (summary.extractionSeconds * 100).rounded() / 100,
            "assembly_seconds": (summary.assemblySeconds * 100).rounded() / 100,
            "extraction_cpu_seconds": (summary.extractionCPUSeconds * 100).rounded() / 100,
            "extraction_peak_rss_bytes": summary.extractionPeakResidentBytes,
            "result_bytes_budget": summary.resultBytesBudget,
            "peak_result_bytes_reserved": summary.peakResultBytesReserved,
            "peak_unwritten_bytes": summary.peakUnwrittenBytes,
        ]
    }
}

/// glibc's `mallopt(M_ARENA_MAX, count)`: threads share at most `count` allocation arenas from now on. Swift's
/// Glibc module leaves `mallopt` and its constants out (they are in `malloc.h`), so it is looked up by name; where
/// it is missing, nothing changes.
func limitMallocArenas(to count: Int32) {
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    let arenaMax: Int32 = -8  // M_ARENA_MAX
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
    _ = unsafeBitCast(symbol, to: Mallopt.self)(arenaMax, count)
}
