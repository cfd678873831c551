import Foundation
import TraceModel
import TraceReaders
import XCTest

/// Repository root, from this file's path.
let repoRoot: String = {
    var u = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { u.deleteLastPathComponent() }
    return u.path
}()

/// Capture bundles under traces/ (directories holding meta.json or a trace file).
func traceBundles() -> [String] {
    let dir = repoRoot + "/traces"
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
    return names.sorted().map { dir + "/" + $0 }.filter { (try? CaptureBundle(path: $0)) != nil }
}

/// Reads a trace into canonical lines.
func canonical(_ path: String, format: TraceFormat? = nil, kallsyms: String? = nil, stacks: Bool = true,
               usec: CanonicalLines.Microseconds, numericOnly: Bool = true) throws -> (lines: [String], ctx: TraceContext) {
    var lines: [String] = []
    var opts = ReadOptions()
    opts.format = format
    opts.kallsyms = kallsyms
    let ctx = TraceContext()
    var sink = CanonicalLines(stacks: stacks, usec: usec, numericFieldsOnly: numericOnly) { lines.append($0) }
    try readTrace(path: path, options: opts, into: &sink, context: ctx)
    return (lines, ctx)
}

/// Runs a command; returns stdout. Fails the test on a non-zero exit.
func runTool(_ argv: [String], stdoutTo file: String? = nil) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = argv
    let out = Pipe()
    if let f = file {
        FileManager.default.createFile(atPath: f, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: f)
    } else {
        p.standardOutput = out
    }
    p.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try p.run()
    var data = Data()
    if file == nil { data = out.fileHandleForReading.readDataToEndOfFile() }
    p.waitUntilExit()
    if p.terminationStatus != 0 { throw NSError(domain: "run", code: Int(p.terminationStatus), userInfo: [NSLocalizedDescriptionKey: argv.joined(separator: " ")]) }
    return String(decoding: data, as: UTF8.self)
}

func which(_ tool: String) -> Bool {
    (try? runTool(["sh", "-c", "command -v \(tool)"])) != nil
}

extension XCTestCase {
    /// A fresh directory for this test, removed with everything in it when the test ends (the reference
    /// tools' outputs put there run to hundreds of megabytes).
    func tempDir() -> String {
        let d = NSTemporaryDirectory() + "pagehint-test-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return d
    }
}

/// Decompresses a `.zst` file to a temporary path (for tools that need a plain file).
func plainCopy(_ path: String, in dir: String) throws -> String {
    if !path.hasSuffix(".zst") { return path }
    let out = dir + "/" + (URL(fileURLWithPath: path).lastPathComponent as NSString).deletingPathExtension
    _ = try runTool(["zstd", "-q", "-d", "-f", path, "-o", out])
    return out
}

/// Compares two canonical line lists and fails with the first difference.
func assertSameLines(_ a: [String], _ b: [String], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "\(what): event counts differ", file: file, line: line)
    for i in 0..<min(a.count, b.count) where a[i] != b[i] {
        XCTFail("\(what): event \(i) differs:\n\(a[i])\(b[i])", file: file, line: line)
        return
    }
}
