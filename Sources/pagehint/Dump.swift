import ArgumentParser
import TraceModel
import TraceReaders

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print every event in one canonical text form.",
        discussion: """
        One line per event: `SECONDS.NANOS cpu=N pid=N comm=C EVENT field=value ...` with raw field values \
        as the kernel recorded them (pfn, index, s_dev numbers, not their printk forms), and with --stacks \
        the kernel stack frames below it. The same capture read from different formats prints the same \
        lines (use --usec, since text formats carry microseconds).
        """)

    @Argument(help: "Trace file (or - for stdin), capture bundle directory, or `pagehint import` database.")
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
        var buffer = ""
        let mode: CanonicalLines.Microseconds = usec == .round ? .round : usec == .trunc ? .trunc : .none
        var sink = CanonicalLines(stacks: stacks, usec: mode, limit: limit) { line in
            buffer += line
            if buffer.utf8.count > 1 << 16 {
                print(buffer, terminator: "")
                buffer = ""
            }
        }
        try reportingErrors {
            try readAnyTrace(path: trace, options: input.readOptions(), into: &sink, context: ctx)
        }
        print(buffer, terminator: "")
    }
}


enum UsecMode: String, ExpressibleByArgument, CaseIterable {
    case round, trunc
}
