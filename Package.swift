// swift-tools-version:6.1
import PackageDescription

let optimize: [SwiftSetting] = []
// The replay loop mutates one model object from many call sites: dynamic exclusivity checks cost a
// third of its time. Bounds checks stay on.
let modelSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
// The readers and the interning tables: every record goes through a few class properties (the decoder's
// plans and frames, the string and stack tables), whose dynamic exclusivity checks cost a twentieth of a
// trace.dat read.
let readerSettings: [SwiftSetting] = modelSettings
// Release binaries link the Swift runtime, Foundation and its ICU in: start-up then does no dynamic loading,
// relocation or symbol lookup of a dozen Swift libraries (half of `pagehint --version`), and the binary
// needs no Swift library at run time. The modules are compiled against the shared Foundation, which
// names only itself for the linker, so the libraries the static Foundation needs are named here.
let staticRuntime: [LinkerSetting] = [.unsafeFlags([
    "-static-stdlib",
    "-Xlinker", "--start-group",
    "-lFoundation", "-lFoundationEssentials", "-lFoundationInternationalization", "-lCoreFoundation",
    "-l_FoundationICU", "-l_FoundationCShims", "-l_FoundationCollections", "-lswiftSynchronization",
    "-Xlinker", "--end-group",
], .when(platforms: [.linux], configuration: .release))]

let package = Package(
    name: "pagehint",
    products: [
        .executable(name: "pagehint", targets: ["pagehint"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
    ],
    targets: [
        // libzstd from the system (Debian: libzstd-dev).
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // A SIGBUS on a mapped input file that another program truncated becomes a one-line error.
        .target(name: "CMapGuard"),
        // Event type, interning, symbol/stack tables: what every other module speaks.
        .target(name: "TraceModel",
                resources: [.embedInCode("Data/callsite-rules.txt"), .embedInCode("Data/renames.txt")],
                swiftSettings: readerSettings),
        // Byte sources, format detection, one reader per format, the cross-CPU sorter.
        .target(name: "TraceReaders", dependencies: ["TraceModel", "CZstd", "CMapGuard"], swiftSettings: readerSettings),
        // SQLite schema, bulk writer, and the reader that streams an import database back as a trace.
        .target(name: "TraceStore",
                dependencies: ["TraceModel", "TraceReaders", "CMapGuard", .product(name: "GRDB", package: "GRDB.swift"),
                               .product(name: "GRDBSQLite", package: "GRDB.swift")],
                swiftSettings: optimize),
        // Guest page-hinting model: frame state, primitives, predicate, hooks per series, host emulator.
        .target(name: "HintingModel", dependencies: ["TraceModel"], swiftSettings: modelSettings),
        .executableTarget(name: "pagehint",
                          dependencies: ["TraceModel", "TraceReaders", "TraceStore", "HintingModel",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "GRDB", package: "GRDB.swift")],
                          swiftSettings: optimize,
                          linkerSettings: staticRuntime),
        .testTarget(name: "TraceModelTests", dependencies: ["TraceModel"]),
        .testTarget(name: "HintingModelTests", dependencies: ["TraceModel", "TraceReaders", "HintingModel"]),
        .testTarget(name: "TraceReadersTests",
                    dependencies: ["TraceModel", "TraceReaders", "TraceStore", .product(name: "GRDB", package: "GRDB.swift")]),
    ]
)
