import ArgumentParser
import TraceModel
import TraceReaders
import TraceStore

#if canImport(Glibc)
import Glibc
#endif

/// Writes text to stderr (unbuffered).
func writeStderr(_ s: String) {
    var s = s
    s.withUTF8 { p in _ = write(2, p.baseAddress, p.count) }
}

/// Prints one line to stderr.
func warn(_ s: String) {
    writeStderr(s.hasSuffix("\n") ? s : s + "\n")
}

/// Runs `body`; a `TraceError` becomes one line on stderr and its exit code.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as TraceError {
        warn("pagehint: \(e.description)")
        throw ExitCode(e.exitCode)
    }
}

extension TraceFormat: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument) }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

/// Options shared by every command that reads traces.
struct InputOptions: ParsableArguments {
    @Option(name: .long, help: "Input format, when detection from content is not wanted (\(TraceFormat.allCases.map(\.rawValue).joined(separator: ", "))).")
    var format: TraceFormat?

    @Option(name: .long, help: "kallsyms file used to symbolise perf.data addresses (plain or .zst).")
    var kallsyms: String?

    @Option(name: .customLong("trace-id"), help: "Which trace of a `pagehint import` database holding several (traces.id).")
    var traceID: Int?

    @Flag(name: .long, help: "No progress line on stderr.")
    var quiet = false

    func readOptions() -> ReadOptions { makeReadOptions(format: format, kallsyms: kallsyms, traceID: traceID, quiet: quiet) }
}

/// Reader options from the command line; the progress line only on a terminal.
func makeReadOptions(format: TraceFormat?, kallsyms: String?, traceID: Int? = nil, quiet: Bool) -> ReadOptions {
    var o = ReadOptions()
    o.format = format
    o.kallsyms = kallsyms
    o.traceID = traceID
    if !quiet && isatty(2) != 0 { o.progress = Progress.shared.update }
    return o
}

/// Input options of the report commands, whose `--format` names the output: the input format is
/// `--input-format` there.
struct ReportInputOptions: ParsableArguments {
    @Option(name: .customLong("input-format"), help: "Input format, when detection from content is not wanted.")
    var format: TraceFormat?

    @Option(name: .long, help: "kallsyms file used to symbolise perf.data addresses (plain or .zst).")
    var kallsyms: String?

    @Option(name: .customLong("trace-id"), help: "Which trace of a `pagehint import` database holding several (traces.id).")
    var traceID: Int?

    @Flag(name: .long, help: "No progress line on stderr.")
    var quiet = false

    func readOptions() -> ReadOptions { makeReadOptions(format: format, kallsyms: kallsyms, traceID: traceID, quiet: quiet) }
}

/// Opens a trace input and streams its events into `sink`: a trace file (`-` for stdin), a capture
/// bundle directory, or a database written by `pagehint import` (`options.traceID` picks one of several
/// traces). Every command reads its traces through this function.
func readAnyTrace<S: EventSink>(path: String, options: ReadOptions, into sink: inout S, context ctx: TraceContext) throws {
    try readTraceOrDatabase(path: path, options: options, into: &sink, context: ctx)
}

/// A progress line on stderr, shown only after a second of work and only on a terminal.
final class Progress: @unchecked Sendable {
    static let shared = Progress()
    var start = monotonicSeconds()
    var shown = false
    var last: Double = 0

    func update(_ done: UInt64, _ total: UInt64?) {
        let now = monotonicSeconds()
        if now - start < 1 || now - last < 0.25 { return }
        last = now
        shown = true
        let mb = Double(done) / 1e6
        if let t = total, t > 0 {
            writeStderr(String(format: "\r%.0f / %.0f MB (%.0f%%)  ", mb, Double(t) / 1e6, 100 * Double(done) / Double(t)))
        } else {
            writeStderr(String(format: "\r%.0f MB  ", mb))
        }
    }

    func finish() {
        if shown { writeStderr("\r\u{1B}[K"); shown = false }
    }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

import Foundation
