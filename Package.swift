// swift-tools-version:6.1
import PackageDescription

// Module map: arrows point one way.
//
//   C libraries ─► CShims ─► HDF5 ─┬─► VGG16 (weights readers, conv base)
//                                  ├─► Storage (feature file, shard journal)
//                                  └─► TopModel (layers, training, model file) ◄─ Storage
//   CJPEG/CPNG ─► ImageInput (scan, decode, resize, preprocess) ─► DataCheck (inspect)
//   CZeroMQ ─► Wire (sockets, messages)
//   Extraction (coordinator job)  = ImageInput + VGG16 + Storage + Wire
//   WorkerRuntime (worker loop)   = ImageInput + VGG16 + Wire
//   WeightsDownload (Keras cache, HTTP fetch) = FileIntegrity + FoundationNetworking + Crypto
//   Coordinator (CLI) = Extraction + DataCheck + TopModel + WeightsDownload;  Worker (CLI) = WorkerRuntime

let shared = "Sources/Shared"

let package = Package(
    name: "Bottleneck",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "bottleneck-coordinator", targets: ["Coordinator"]),
        .executable(name: "bottleneck-worker", targets: ["Worker"]),
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
        .systemLibrary(name: "CJPEG", path: "\(shared)/CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "CPNG", path: "\(shared)/CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .target(name: "CShims", dependencies: ["CHDF5", "CJPEG", "CPNG"], path: "\(shared)/CShims"),

        // MARK: - Libraries, one job each
        .target(name: "HDF5", dependencies: ["CHDF5", "CShims"], path: "\(shared)/HDF5", exclude: ["README.md"]),
        .target(
            name: "FileIntegrity", dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            path: "\(shared)/FileIntegrity", exclude: ["README.md"]),
        .target(
            name: "ImageInput", dependencies: ["CShims", "CJPEG", "CPNG"], path: "\(shared)/ImageInput",
            exclude: ["README.md"]),
        .target(
            name: "VGG16",
            dependencies: ["HDF5", "FileIntegrity", "COpenBLAS", .product(name: "Crypto", package: "swift-crypto")],
            path: "\(shared)/VGG16", exclude: ["README.md"],
            // The convolution kernels are generic SIMD code that runs ~50× slower unoptimised; optimise
            // them in debug builds too, so tests and debug runs of the engine take seconds, not minutes.
            swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(
            name: "Storage", dependencies: ["HDF5", "FileIntegrity", .product(name: "Crypto", package: "swift-crypto")],
            path: "\(shared)/Storage", exclude: ["README.md"]),
        .target(name: "Wire", dependencies: ["CZeroMQ"], path: "\(shared)/Wire", exclude: ["README.md"]),
        .target(
            name: "TopModel", dependencies: ["HDF5", "FileIntegrity", "Storage", "COpenBLAS"], path: "\(shared)/TopModel",
            exclude: ["README.md"]),
        .target(
            name: "DataCheck",
            dependencies: ["ImageInput", .product(name: "Crypto", package: "swift-crypto")],
            path: "\(shared)/DataCheck", exclude: ["README.md"]),
        .target(
            name: "Extraction",
            dependencies: [
                "ImageInput", "VGG16", "Storage", "Wire", "FileIntegrity", .product(name: "Logging", package: "swift-log"),
            ],
            path: "\(shared)/Extraction", exclude: ["README.md"]),
        .target(
            name: "WorkerRuntime",
            dependencies: [
                "ImageInput", "VGG16", "Wire", "FileIntegrity", .product(name: "Logging", package: "swift-log"),
            ],
            path: "\(shared)/WorkerRuntime", exclude: ["README.md"]),
        .target(
            name: "WeightsDownload",
            dependencies: ["FileIntegrity", .product(name: "Crypto", package: "swift-crypto")],
            path: "\(shared)/WeightsDownload", exclude: ["README.md"]),

        // MARK: - Executables
        .executableTarget(
            name: "Coordinator",
            dependencies: [
                "Extraction", "DataCheck", "TopModel", "ImageInput", "VGG16", "Storage", "WorkerRuntime",
                "WeightsDownload",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Coordinator"),
        .executableTarget(
            name: "Worker",
            dependencies: [
                "WorkerRuntime", "VGG16", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Worker", exclude: ["README.md"]),

        // MARK: - Tests
        .target(
            name: "TestSupport", dependencies: ["HDF5", "ImageInput"], path: "Tests/TestSupport",
            exclude: ["local_file_server.py"]),
        .testTarget(name: "HDF5Tests", dependencies: ["HDF5", "TestSupport"]),
        .testTarget(
            name: "ImageInputTests", dependencies: ["ImageInput", "HDF5", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "VGG16Tests", dependencies: ["VGG16", "ImageInput", "TestSupport"]),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "TestSupport"]),
        .testTarget(name: "WireTests", dependencies: ["Wire", "Storage", "VGG16", "TestSupport"]),
        .testTarget(
            name: "TopModelTests", dependencies: ["TopModel", "Storage", "TestSupport"], exclude: ["keras_load_check.py"]),
        .testTarget(name: "DataCheckTests", dependencies: ["DataCheck", "TestSupport"]),
        .testTarget(
            name: "WeightsDownloadTests",
            dependencies: ["WeightsDownload", "TestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "Storage", "HDF5", "ImageInput", "VGG16", "TopModel", "WorkerRuntime", "TestSupport",
            ]),
    ]
)
