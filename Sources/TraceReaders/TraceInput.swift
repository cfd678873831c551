import Foundation
import TraceModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The input formats pagehint reads. Detected from content; `--format` overrides.
public enum TraceFormat: String, CaseIterable, Sendable {
    case tracefs = "tracefs"
    case report = "report"
    case traceDat = "trace.dat"
    case perfData = "perf.data"
    case perfScript = "perf-script"
    case bundle = "bundle"
    /// A database written by `pagehint import` (read by `readAnyTrace` in TraceStore).
    case importDatabase = "db"

    public var help: String {
        switch self {
        case .tracefs: return "tracefs text (`trace`, `trace_pipe`), with or without stacks"
        case .report: return "`trace-cmd report` text"
        case .traceDat: return "trace-cmd trace.dat, version 6 or 7"
        case .perfData: return "perf.data (file or pipe mode, -z compressed records too)"
        case .perfScript: return "`perf script` text with callchains"
        case .bundle: return "a capture bundle directory from tools/capture/"
        case .importDatabase: return "a SQLite database written by `pagehint import`"
        }
    }
}

/// Options that apply to every reader.
public struct ReadOptions: Sendable {
    public var format: TraceFormat? = nil
    /// kallsyms file used to symbolise perf.data addresses.
    public var kallsyms: String? = nil
    /// Which trace of an import database holding several (its `traces.id`); ignored by the other formats.
    public var traceID: Int? = nil
    /// Called now and then with (bytes consumed, total bytes if known).
    public var progress: (@Sendable (UInt64, UInt64?) -> Void)? = nil
    public init() {}
}

/// A stream that first replays bytes already peeked from another stream.
final class PeekedStream: ByteStream {
    let inner: ByteStream
    var prefix: [UInt8]
    var pos = 0
    init(_ inner: ByteStream, prefix: [UInt8]) {
        self.inner = inner
        self.prefix = prefix
    }
    var name: String { inner.name }
    var sizeHint: UInt64? { inner.sizeHint }
    var consumed: UInt64 { inner.consumed }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if pos < prefix.count {
            let n = min(buffer.count, prefix.count - pos)
            prefix.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + pos, byteCount: n) }
            pos += n
            return n
        }
        return try inner.read(into: buffer)
    }
}

func peek(_ s: ByteStream, _ count: Int) throws -> [UInt8] {
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: count)
    while out.count < count {
        let n = try buf.withUnsafeMutableBytes { try s.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<(count - out.count)])) }
        if n == 0 { break }
        out.append(contentsOf: buf[0..<n])
    }
    return out
}

/// The 16 bytes every SQLite database file starts with.
public let sqliteMagic: [UInt8] = Array("SQLite format 3\0".utf8)

/// Detects the format of the bytes at the start of an input (already decompressed).
public func detectFormat(_ head: [UInt8]) -> TraceFormat? {
    if head.count >= 16 && Array(head[0..<16]) == sqliteMagic { return .importDatabase }
    if head.count >= 10 && head[0] == 0x17 && head[1] == 0x08 && head[2] == 0x44
        && Array(head[3..<10]) == Array("tracing".utf8) {
        return .traceDat
    }
    if head.count >= 8 && Array(head[0..<8]) == Array("PERFILE2".utf8) { return .perfData }
    // Text: look at the first lines.
    let text = String(decoding: head.prefix(65536), as: UTF8.self)
    var sawReportFrame = false, sawTracefsFrame = false, sawPerfFrame = false
    var sawPerfHeader = false, sawTracefsHeader = false, sawCpus = false
    for line in text.split(separator: "\n", omittingEmptySubsequences: true).prefix(400) {
        if line.hasPrefix("# tracer:") || line.hasPrefix("# entries-in-buffer") { sawTracefsHeader = true }
        if line.hasPrefix("cpus=") { sawCpus = true }
        if line.hasPrefix("=> ") { sawReportFrame = true }
        if line.hasPrefix(" => ") { sawTracefsFrame = true }
        if line.hasPrefix("\t") && line.contains(" ([") { sawPerfFrame = true }
        if !line.hasPrefix("#") && !line.hasPrefix("\t"), let r = line.range(of: "]") {
            // perf script: `comm PID [CPU] TS: [period] system:event:`
            let after = line[r.upperBound...]
            let words = after.split(separator: " ", omittingEmptySubsequences: true)
            if words.count >= 2 && words[0].hasSuffix(":") {
                for w in words.dropFirst().prefix(2) where w.hasSuffix(":") && w.dropLast().contains(":") {
                    sawPerfHeader = true
                }
            }
        }
    }
    if sawTracefsHeader || sawTracefsFrame { return .tracefs }
    if sawCpus || sawReportFrame { return .report }
    if sawPerfHeader || sawPerfFrame { return .perfScript }
    // A bare tracefs text without header: `comm-pid [cpu] ...`.
    if text.contains("]") && text.contains(": ") && head.count > 0 { return .tracefs }
    return nil
}

/// Opens `path` (a file, `-` for stdin, or a bundle directory), unwraps zstd, detects the format and
/// streams every event, in timestamp order, into `sink`.
public func readTrace<S: EventSink>(path: String, options: ReadOptions, into sink: inout S, context ctx: TraceContext) throws {
    var st = stat()
    if path != "-" && stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
        if let f = options.format, f != .bundle {
            throw TraceError(.usage, file: path, "is a directory, but --format \(f.rawValue) names a file format")
        }
        try readBundle(path: path, options: options, into: &sink, context: ctx)
        return
    }
    if options.format == .bundle {
        throw TraceError(.usage, file: path, "--format bundle needs a capture bundle directory")
    }
    let file = try FileSource(path: path)
    var stream: ByteStream = file
    var head = try peek(file, 4)
    var compressed = false
    if head.count == 4 && head[0] == 0x28 && head[1] == 0xB5 && head[2] == 0x2F && head[3] == 0xFD {
        stream = ZstdStream(PeekedStream(file, prefix: head))
        compressed = true
        head = try peek(stream, 65536)
    } else {
        head += try peek(file, 65536 - 4)
    }
    stream = PeekedStream(stream, prefix: head)
    if head.isEmpty { throw TraceError.bad(path, 0, "empty file") }
    let detected = detectFormat(head)
    guard let format = options.format ?? detected else {
        throw TraceError.bad(path, 0, "unrecognised format (not tracefs text, trace-cmd report, trace.dat, perf.data or perf script text); use --format")
    }
    if let o = options.format, let d = detected, o != d, [d, o].contains(where: { [.traceDat, .perfData, .importDatabase].contains($0) }) {
        throw TraceError.bad(path, 0, "--format \(o.rawValue) given, but the file is \(d.rawValue)")
    }
    if compressed { ctx.facts.append(("wrapper", "zstd")) }
    switch format {
    case .tracefs, .report:
        var r = TextTraceReader(stream: stream, dialect: format == .tracefs ? .tracefs : .traceCmdReport)
        if let p = options.progress { r.progress = { p($0, file.sizeHint) } }
        try r.read(into: &sink, context: ctx)
    case .perfScript:
        var r = PerfScriptReader(stream: stream)
        if let p = options.progress { r.progress = { p($0, file.sizeHint) } }
        try r.read(into: &sink, context: ctx)
    case .traceDat:
        let f = compressed ? try spoolToTempFile(stream) : file
        var r = TraceDatReader(file: f)
        r.progress = options.progress
        try r.read(into: &sink, context: ctx)
    case .perfData:
        let f: FileSource = (compressed || !file.isSeekable || file.size == 0) ? try spoolToTempFile(stream) : file
        var kallsyms: Kallsyms? = nil
        if let k = options.kallsyms { kallsyms = try loadKallsyms(path: k) }
        var r = PerfDataReader(file: f, kallsyms: kallsyms)
        r.progress = options.progress
        try r.read(into: &sink, context: ctx)
    case .bundle:
        throw TraceError(.usage, file: path, "--format bundle needs a directory")
    case .importDatabase:
        // `readAnyTrace` opens plain database files itself; one that arrives here came through stdin or zstd.
        if detected != .importDatabase { throw TraceError.bad(path, 0, "--format db given, but the file is not a SQLite database") }
        throw TraceError.bad(path, 0, "a SQLite database is read from a plain file (not stdin, not .zst): decompress it first")
    }
}

/// Reads a kallsyms file (plain or .zst).
public func loadKallsyms(path: String) throws -> Kallsyms {
    let k: Kallsyms
    if let m = try mappedPlainFile(path: path, limit: 256 << 20) {
        // A plain file is read in place: no copy of its megabytes.
        k = Kallsyms(text: m.bytes, owner: m)
    } else {
        k = Kallsyms(text: try readSmallFile(path: path, limit: 256 << 20))
    }
    if k.isEmpty { throw TraceError.bad(path, 0, "no text symbols with non-zero addresses (kallsyms read without root?)") }
    return k
}

/// A regular, uncompressed file of at most `limit` bytes, mapped; nil for anything else (zstd, a pipe,
/// larger, or when mapping is refused), which `readSmallFile` reads instead.
func mappedPlainFile(path: String, limit: Int) throws -> MappedFile? {
    let f = try FileSource(path: path)
    guard f.size >= 4, f.size <= UInt64(limit), let m = f.readMapping else { return nil }
    let b = m.bytes
    if b[0] == 0x28 && b[1] == 0xB5 && b[2] == 0x2F && b[3] == 0xFD { return nil }
    return m
}

/// Reads a whole (possibly zstd-compressed) small file.
public func readSmallFile(path: String, limit: Int) throws -> [UInt8] {
    let f = try FileSource(path: path)
    let head = try peek(f, 4)
    let s: ByteStream
    var expected = 0
    if head.count == 4 && head[0] == 0x28 && head[1] == 0xB5 && head[2] == 0x2F && head[3] == 0xFD {
        s = ZstdStream(PeekedStream(f, prefix: head))
    } else {
        s = PeekedStream(f, prefix: head)
        expected = Int(min(f.size, UInt64(limit)))
    }
    return try readAll(s, limit: limit, expected: expected)
}
