// swift-tools-version:6.1
import PackageDescription

// Module map: every arrow points to a lower layer. The layers, bottom first, are listed once, in
// scripts/check-layers.sh (`make test` runs it); it fails on an import that points up or sideways, or that
// is not declared below.
//
//   Reporting (the one error shape, progress values) ◄─ every library below that reports
//   Provenance (ComputeProfile, InputStamp: what decides the features' bytes) ◄─ ImageInput, Wire, Storage, Extraction,
//                                                                              WorkerRuntime
//   C libraries (CHDF5, COpenBLAS, CJPEG, CPNG, CZeroMQ) ─► CShims
//   FileIntegrity ◄─ Reporting          CLI ◄─ Reporting (error → exit status, the one progress renderer)
//   HDF5 ◄─ CHDF5, CShims        BLAS ◄─ COpenBLAS, CShims, Reporting (+ bf16 and packed fp32 products, CPU features)
//   Wire ◄─ CZeroMQ        ImageInput ◄─ CShims, Provenance
//   Augmentation ◄─ Reporting (Keras' ImageDataGenerator transforms, counter-based draws)
//   VGG16 ◄─ HDF5, BLAS, CShims, FileIntegrity   Storage ◄─ HDF5, FileIntegrity          DataCheck ◄─ ImageInput
//   TopModel ◄─ HDF5, Storage, BLAS, CShims, FileIntegrity    ImageFeatures ◄─ ImageInput, VGG16, BLAS
//   Export (.npy / CSV for Python) ◄─ Storage, FileIntegrity
//   Report (the HTML page) ◄─ TopModel, Storage, ImageInput, FileIntegrity
//   Extraction ◄─ ImageInput, VGG16, Storage, Wire, FileIntegrity
//   FineTuning ◄─ VGG16, TopModel, ImageInput, Augmentation, HDF5, BLAS, FileIntegrity (block5 + top training)
//   WorkerRuntime ◄─ ImageInput, ImageFeatures, VGG16, Wire, FileIntegrity, FineTuning (chunk gradients)
//   DistributedTuning ◄─ FineTuning, Extraction (the local worker pool), Wire: fine-tuning across workers
//   WorkerCommandLine ◄─ WorkerRuntime, Wire, BLAS, VGG16, CLI
//   WeightsDownload ◄─ Reporting, FileIntegrity (and FoundationNetworking, Crypto): Keras' cache, HTTP fetch
//   bottleneck-coordinator ◄─ Extraction, DistributedTuning, DataCheck, TopModel, ImageFeatures, ImageInput, VGG16, Storage, Wire, BLAS,
//                             CLI, Reporting, WeightsDownload, FileIntegrity, Export, Report, FineTuning,
//                             Augmentation
//   bottleneck-worker ◄─ WorkerCommandLine, CLI       bottleneck-dev ◄─ WorkerCommandLine, ImageInput, VGG16, BLAS, CLI,
//                                                                      TopModel
//   bottleneck-loadgen ◄─ Wire, Provenance, Storage, CLI, FileIntegrity (simulated workers for load tests, and
//                         their check)

let shared = "Sources/Shared"

let package = Package(
    name: "Bottleneck",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "bottleneck-coordinator", targets: ["Coordinator"]),
        .executable(name: "bottleneck-worker", targets: ["Worker"]),
        .executable(name: "bottleneck-dev", targets: ["Dev"]),
        .executable(name: "bottleneck-loadgen", targets: ["LoadGen"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
    ],
    targets: [
        // MARK: - C libraries (Debian packages) and the one shim target
        .systemLibrary(name: "CZeroMQ", path: "\(shared)/CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CHDF5", path: "\(shared)/CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(
            name: "COpenBLAS", path: "\(shared)/COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CJPEG", path: "\(shared)/CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "CPNG", path: "\(shared)/CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .target(
            name: "CShims", dependencies: ["CHDF5", "CJPEG", "CPNG"], path: "\(shared)/CShims",
            // The SIMD kernels (bf16 product, FMA peak) keep their accumulators in registers only when
            // optimised; optimise debug builds too, as the release build does.
            cSettings: [.unsafeFlags(["-O2"], .when(configuration: .debug))]),

        // MARK: - Libraries, one job each
        .target(name: "Reporting", path: "\(shared)/Reporting", exclude: ["README.md"]),
        .target(name: "Provenance", path: "\(shared)/Provenance", exclude: ["README.md"]),
        .target(
            name: "FileIntegrity", dependencies: ["Reporting", .product(name: "Crypto", package: "swift-crypto")],
            path: "\(shared)/FileIntegrity", exclude: ["README.md"]),
        .target(
            name: "CLI",
            dependencies: [
                "Reporting", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "\(shared)/CLI", exclude: ["README.md"]),
        .target(
            name: "HDF5", dependencies: ["CHDF5", "CShims", "Reporting"], path: "\(shared)/HDF5",
            exclude: ["README.md"]),
        .target(
            name: "ImageInput", dependencies: ["CShims", "CJPEG", "CPNG", "Reporting", "Provenance"],
            path: "\(shared)/ImageInput",
            exclude: ["README.md"]),
        .target(
            name: "BLAS",
            dependencies: ["COpenBLAS", "CShims", "Reporting", .product(name: "Logging", package: "swift-log")],
            path: "\(shared)/BLAS", exclude: ["README.md"]),
        .target(
            name: "Augmentation", dependencies: ["Reporting"], path: "\(shared)/Augmentation",
            exclude: ["README.md"]),
        .target(
            name: "VGG16",
            dependencies: [
                "HDF5", "BLAS", "CShims", "FileIntegrity", "Reporting",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "\(shared)/VGG16", exclude: ["README.md"],
            // The convolution kernels are generic SIMD code that runs ~50× slower unoptimised; optimise
            // them in debug builds too, so tests and debug runs of the engine take seconds, not minutes.
            swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(
            name: "Storage",
            dependencies: [
                "HDF5", "FileIntegrity", "Provenance", "Reporting", .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "\(shared)/Storage", exclude: ["README.md"]),
        .target(
            name: "Wire", dependencies: ["CZeroMQ", "Provenance", "Reporting"], path: "\(shared)/Wire",
            exclude: ["README.md"]),
        .target(
            name: "TopModel", dependencies: ["HDF5", "Storage", "BLAS", "CShims", "FileIntegrity", "Reporting"],
            path: "\(shared)/TopModel",
            exclude: ["README.md"]),
        .target(
            name: "Export", dependencies: ["Storage", "FileIntegrity", "Reporting"], path: "\(shared)/Export",
            exclude: ["README.md"]),
        .target(
            name: "Report", dependencies: ["TopModel", "Storage", "ImageInput", "FileIntegrity", "Reporting"],
            path: "\(shared)/Report", exclude: ["README.md"]),
        .target(
            name: "DataCheck",
            dependencies: ["ImageInput", "Reporting", .product(name: "Crypto", package: "swift-crypto")],
            path: "\(shared)/DataCheck", exclude: ["README.md"]),
        .target(
            name: "Extraction",
            dependencies: [
                "ImageInput", "VGG16", "Storage", "Wire", "FileIntegrity", "Provenance", "Reporting",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "\(shared)/Extraction", exclude: ["README.md"]),
        .target(
            name: "ImageFeatures", dependencies: ["ImageInput", "VGG16", "BLAS"], path: "\(shared)/ImageFeatures",
            exclude: ["README.md"]),
        .target(
            name: "FineTuning",
            dependencies: [
                "VGG16", "TopModel", "ImageInput", "Augmentation", "HDF5", "BLAS", "FileIntegrity", "Reporting",
            ],
            path: "\(shared)/FineTuning", exclude: ["README.md"]),
        .target(
            name: "WorkerRuntime",
            dependencies: [
                "ImageInput", "ImageFeatures", "VGG16", "Wire", "FileIntegrity", "Provenance", "Reporting",
                "FineTuning", "TopModel", "Augmentation", "BLAS", .product(name: "Logging", package: "swift-log"),
            ],
            path: "\(shared)/WorkerRuntime", exclude: ["README.md"]),
        .target(
            name: "DistributedTuning",
            dependencies: [
                "FineTuning", "Extraction", "Wire", "Provenance", "Reporting",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "\(shared)/DistributedTuning", exclude: ["README.md"]),
        .target(
            name: "WeightsDownload",
            dependencies: ["Reporting", "FileIntegrity", .product(name: "Crypto", package: "swift-crypto")],
            path: "\(shared)/WeightsDownload", exclude: ["README.md"]),
        .target(
            name: "WorkerCommandLine",
            dependencies: [
                "WorkerRuntime", "Wire", "BLAS", "VGG16", "CLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "\(shared)/WorkerCommandLine", exclude: ["README.md"]),

        // MARK: - Executables
        .executableTarget(
            name: "Coordinator",
            dependencies: [
                "Extraction", "DataCheck", "TopModel", "ImageFeatures", "ImageInput", "VGG16", "Storage", "Wire",
                "BLAS", "CLI", "Reporting", "WeightsDownload", "FileIntegrity", "Export", "Report", "FineTuning",
                "Augmentation", "DistributedTuning",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Coordinator"),
        .executableTarget(
            name: "Worker",
            dependencies: [
                "WorkerCommandLine", "CLI", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Worker", exclude: ["README.md"]),
        // Developer tools (benchmarks, a worker with test hooks); not part of the product.
        .executableTarget(
            name: "Dev",
            dependencies: [
                "WorkerCommandLine", "ImageInput", "VGG16", "BLAS", "CLI", "TopModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Dev", exclude: ["README.md"]),
        // Simulated workers for load tests of a real coordinator (`make bench-scale`, the load tests).
        .executableTarget(
            name: "LoadGen",
            dependencies: [
                "Wire", "Provenance", "Storage", "CLI", "FileIntegrity",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/LoadGen", exclude: ["README.md"]),

        // MARK: - Tests
        .target(
            name: "TestSupport", dependencies: ["HDF5", "ImageInput", "CShims", "CPNG"], path: "Tests/TestSupport",
            exclude: ["local_file_server.py"]),
        // Unit tests: one module each, no child processes.
        .testTarget(name: "BLASTests", dependencies: ["BLAS", "Reporting"]),
        .testTarget(name: "HDF5Tests", dependencies: ["HDF5", "TestSupport"]),
        .testTarget(
            name: "ImageInputTests", dependencies: ["ImageInput", "HDF5", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "VGG16Tests", dependencies: ["VGG16", "HDF5", "BLAS", "CShims", "TestSupport"]),
        .testTarget(
            name: "StorageTests", dependencies: ["Storage", "HDF5", "Provenance", "FileIntegrity", "TestSupport"]),
        .testTarget(name: "WireTests", dependencies: ["Wire", "Provenance", "Reporting", "TestSupport"]),
        .testTarget(
            name: "TopModelTests", dependencies: ["TopModel", "Storage", "HDF5", "BLAS", "TestSupport"],
            exclude: ["keras_load_check.py"]),
        .testTarget(name: "DataCheckTests", dependencies: ["DataCheck", "TestSupport"]),
        .testTarget(name: "ImageFeaturesTests", dependencies: ["ImageFeatures", "ImageInput", "VGG16", "TestSupport"]),
        .testTarget(name: "ExtractionTests", dependencies: ["Extraction"]),
        .testTarget(name: "AugmentationTests", dependencies: ["Augmentation", "HDF5", "TestSupport"]),
        .testTarget(
            name: "FineTuningTests",
            dependencies: [
                "FineTuning", "TopModel", "VGG16", "HDF5", "BLAS", "Augmentation", "ImageInput", "TestSupport",
            ], exclude: ["keras_finetuned_check.py"]),
        .testTarget(name: "WorkerRuntimeTests", dependencies: ["WorkerRuntime", "TestSupport"]),
        .testTarget(name: "WeightsDownloadTests", dependencies: ["WeightsDownload", "TestSupport"]),
        .testTarget(name: "ExportTests", dependencies: ["Export"]),
        .testTarget(name: "ReportTests", dependencies: ["Report", "TopModel", "Storage"]),
        .testTarget(
            name: "CLITests",
            dependencies: ["CLI", "Reporting", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        // Integration tests: start the built executables (`swift build --build-tests` builds them).
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "Storage", "HDF5", "VGG16", "Wire", "BLAS", "FileIntegrity", "Provenance", "Reporting",
                "WeightsDownload",
                "Export", "Report", "TopModel", "ImageInput", "TestSupport",
            ]),
        // Benchmarks: print figures, assert nothing; each suite runs only when its variable is set.
        .testTarget(
            name: "Benchmarks",
            dependencies: ["VGG16", "HDF5", "BLAS", "TopModel", "Storage", "FineTuning", "Provenance", "TestSupport"]),
    ]
)
