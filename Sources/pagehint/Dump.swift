import ArgumentParser
import TraceModel
import TraceReaders

/// Prints events in one canonical text form, whatever the input format.
struct DumpSink: EventSink {
    var stacks: Bool
    var usec: UsecMode?
    var limit: UInt64
    var printed: UInt64 = 0
    var out = ""

    mutating func consume(_ ev: borrowing Event, context ctx: TraceContext) {
        if printed >= limit { return }
        let e = copy ev
        printed += 1
        let ts: UInt64
        switch usec {
        case .none: ts = e.timestamp
        case .round: ts = (e.timestamp + 500) / 1000 * 1000
        case .trunc: ts = e.timestamp / 1000 * 1000
        }
        out += "\(ts / 1_000_000_000).\(String(ts % 1_000_000_000).leftPadZero(9)) cpu=\(e.cpu) pid=\(e.pid) comm=\(ctx.strings[e.comm]) \(ctx.types[Int(e.type)].name)"
        let t = ctx.types[Int(e.type)]
        for i in 0..<Int(e.fieldCount) {
            out += " \(t.fields[i].name)=\(ctx.render(e, field: i))"
        }
        out += "\n"
        if stacks && e.stack != 0 {
            for f in ctx.stackNames(e.stack) { out += "  => \(f)\n" }
        }
        if out.utf8.count > 1 << 16 {
            print(out, terminator: "")
            out = ""
        }
    }
}

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print every event in one canonical text form.",
        discussion: """
        One line per event: `SECONDS.NANOS cpu=N pid=N comm=C EVENT field=value ...` with raw field values \
        as the kernel recorded them (pfn, index, s_dev numbers, not their printk forms), and with --stacks \
        the kernel stack frames below it. The same capture read from different formats prints the same \
        lines (use --usec, since text formats carry microseconds).
        """)

    @Argument(help: "Trace file (or - for stdin), or a capture bundle directory.")
    var trace: String

    @OptionGroup var input: InputOptions

    @Flag(name: .long, help: "Print the kernel stack of each event.")
    var stacks = false

    @Option(name: .long, help: "Print timestamps in microseconds: `round` as tracefs and trace-cmd report print them, `trunc` as perf script does.")
    var usec: UsecMode?

    @Option(name: .long, help: "Stop after this many events.")
    var limit: UInt64 = UInt64.max

    func run() throws {
        let ctx = TraceContext()
        var sink = DumpSink(stacks: stacks, usec: usec, limit: limit)
        try reportingErrors {
            try readTrace(path: trace, options: input.readOptions(), into: &sink, context: ctx)
        }
        print(sink.out, terminator: "")
    }
}

extension String {
    func leftPadZero(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

enum UsecMode: String, ExpressibleByArgument, CaseIterable {
    case round, trunc
}
