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
//   Storage ─► Export (.npy / CSV for Python);  TopModel + Storage + ImageInput ─► Report (HTML page)
//   Coordinator (CLI) = Extraction + DataCheck + TopModel + Export + Report;  Worker (CLI) = WorkerRuntime
//   Reporting (error shape, progress values) sits under every library; CLI (error mapping, progress
//   renderer, logging options) = Reporting + ArgumentParser + Logging, under both executables

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
        .target(name: "Reporting", path: "\(shared)/Reporting", exclude: ["README.md"]),
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
            name: "ImageInput", dependencies: ["CShims", "CJPEG", "CPNG", "Reporting"], path: "\(shared)/ImageInput",
            exclude: ["README.md"]),
        .target(
            name: "VGG16",
            dependencies: ["HDF5", "FileIntegrity", "COpenBLAS", "Reporting", .product(name: "Crypto", package: "swift-crypto")],
            path: "\(shared)/VGG16", exclude: ["README.md"],
            // The convolution kernels are generic SIMD code that runs ~50× slower unoptimised; optimise
            // them in debug builds too, so tests and debug runs of the engine take seconds, not minutes.
            swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(
            name: "Storage", dependencies: ["HDF5", "FileIntegrity", "Reporting", .product(name: "Crypto", package: "swift-crypto")],
            path: "\(shared)/Storage", exclude: ["README.md"]),
        .target(name: "Wire", dependencies: ["CZeroMQ", "Reporting"], path: "\(shared)/Wire", exclude: ["README.md"]),
        .target(
            name: "TopModel", dependencies: ["HDF5", "FileIntegrity", "Storage", "COpenBLAS", "Reporting"], path: "\(shared)/TopModel",
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
                "ImageInput", "VGG16", "Storage", "Wire", "Reporting", "FileIntegrity",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "\(shared)/Extraction", exclude: ["README.md"]),
        .target(
            name: "WorkerRuntime",
            dependencies: [
                "ImageInput", "VGG16", "Wire", "Reporting", "FileIntegrity",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "\(shared)/WorkerRuntime", exclude: ["README.md"]),

        // MARK: - Executables
        .executableTarget(
            name: "Coordinator",
            dependencies: [
                "Extraction", "DataCheck", "TopModel", "ImageInput", "VGG16", "Storage", "WorkerRuntime",
                "CLI", "Reporting", "Export", "Report",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Coordinator"),
        .executableTarget(
            name: "Worker",
            dependencies: [
                "WorkerRuntime", "VGG16", "CLI", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Worker", exclude: ["README.md"]),

        // MARK: - Tests
        .target(name: "TestSupport", dependencies: ["HDF5", "ImageInput"], path: "Tests/TestSupport"),
        .testTarget(name: "HDF5Tests", dependencies: ["HDF5", "TestSupport"]),
        .testTarget(
            name: "ImageInputTests", dependencies: ["ImageInput", "HDF5", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "VGG16Tests", dependencies: ["VGG16", "ImageInput", "TestSupport"]),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "TestSupport"]),
        .testTarget(name: "WireTests", dependencies: ["Wire", "Storage", "VGG16", "TestSupport"]),
        .testTarget(
            name: "TopModelTests", dependencies: ["TopModel", "Storage", "TestSupport"], exclude: ["keras_load_check.py"]),
        .testTarget(name: "DataCheckTests", dependencies: ["DataCheck", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["CLI", "Reporting"]),
        .testTarget(
            name: "ExportReportTests",
            dependencies: ["Export", "Report", "Storage", "TopModel", "ImageInput", "VGG16", "TestSupport"]),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "Storage", "HDF5", "ImageInput", "VGG16", "TopModel", "WorkerRuntime", "TestSupport",
            ]),
    ]
)
