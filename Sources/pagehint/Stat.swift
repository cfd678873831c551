import ArgumentParser
import TraceModel
import TraceReaders

/// Counts events per type and collects the facts `pagehint stat` prints.
struct StatSink: EventSink {
    var counts: [UInt64] = []
    var records: UInt64 = 0
    var withStack: UInt64 = 0
    var first: UInt64 = 0
    var last: UInt64 = 0

    mutating func consume(_ e: borrowing Event, context: TraceContext) {
        let t = Int(e.type)
        if t >= counts.count { counts.append(contentsOf: repeatElement(0, count: t + 1 - counts.count)) }
        counts[t] += 1
        if records == 0 { first = e.timestamp }
        last = e.timestamp
        records += 1
        if e.stack != 0 { withStack += 1 }
    }
}

struct Stat: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stat",
        abstract: "Count the events of a trace and print its facts.",
        discussion: """
        Reads any supported trace (format detected from content) and prints per-event counts, the number \
        of records, how many carry a kernel stack, lost events, CPUs, kernel release and time span.

        With --json one object is printed: {"format", "kernel", "cpus", "events": {"<event>": count}, \
        "records", "with_stack", "lost", "first_ns", "last_ns"}. Kernel stacks are attached to their \
        event and are not counted as events.
        """)

    @Argument(help: "Trace file (or - for stdin), capture bundle directory, or `pagehint import` database.")
    var trace: String

    @OptionGroup var input: InputOptions

    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    func run() throws {
        let ctx = TraceContext()
        var sink = StatSink()
        try reportingErrors {
            try readAnyTrace(path: trace, options: input.readOptions(), into: &sink, context: ctx)
        }
        Progress.shared.finish()
        let lost = ctx.lost.reduce(UInt64(0)) { $0 + $1.count }
        var rows: [(String, UInt64)] = []
        for (i, c) in sink.counts.enumerated() where c > 0 { rows.append((ctx.types[i].name, c)) }
        rows.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        if json {
            var events: [(String, JSON)] = []
            for (n, c) in rows.sorted(by: { $0.0 < $1.0 }) { events.append((n, .uint(c))) }
            let obj: JSON = .object([
                ("format", .string(ctx.format)),
                ("kernel", ctx.kernelRelease.map { .string($0) } ?? .null),
                ("cpus", .int(Int64(ctx.cpus))),
                ("events", .object(events)),
                ("records", .uint(sink.records)),
                ("with_stack", .uint(sink.withStack)),
                ("lost", .uint(lost)),
                ("lost_runs", .int(Int64(ctx.lost.count))),
                ("first_ns", sink.records > 0 ? .uint(sink.first) : .null),
                ("last_ns", sink.records > 0 ? .uint(sink.last) : .null),
                ("stacks", .int(Int64(ctx.stacks.count - 1))),
                ("symbols", .int(Int64(ctx.symbols.count - 1))),
            ])
            print(obj.render())
            return
        }
        print("format      \(ctx.format)\(ctx.facts.first { $0.0 == "wrapper" } != nil ? " (zstd)" : "")")
        print("kernel      \(ctx.kernelRelease ?? "unknown")")
        print("cpus        \(ctx.cpus)")
        print("records     \(sink.records)")
        print("with stack  \(sink.withStack)")
        print("lost        \(lost)\(ctx.lost.isEmpty ? "" : " in \(ctx.lost.count) run(s)")")
        if sink.records > 0 {
            let span = Double(sink.last - sink.first) / 1e9
            print("time        \(fmtSeconds(sink.first)) .. \(fmtSeconds(sink.last)) (\(String(format: "%.6f", span)) s)")
        }
        print("stacks      \(ctx.stacks.count - 1) distinct, \(ctx.symbols.count - 1) symbols")
        print("")
        let w = max(5, rows.map(\.0.count).max() ?? 5)
        print("event".padding(toLength: w, withPad: " ", startingAt: 0) + "  " + "count".leftPad(10) + "   share")
        for (n, c) in rows {
            let share = sink.records > 0 ? 100 * Double(c) / Double(sink.records) : 0
            print(n.padding(toLength: w, withPad: " ", startingAt: 0) + "  " + String(c).leftPad(10) + String(format: "  %5.1f%%", share))
        }
    }
}

func fmtSeconds(_ ns: UInt64) -> String {
    String(format: "%llu.%06llu", ns / 1_000_000_000, (ns % 1_000_000_000) / 1000)
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}

import Foundation
