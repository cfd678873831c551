import ArgumentParser
import TraceModel
import TraceReaders
import TraceStore

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import traces into a SQLite database.",
        discussion: """
        Writes every event of each trace (typed columns for pfn, dev, ino, index and order; other fields \
        in `extra` as name=value text), event types, comm strings, interned stacks with their frames and \
        symbols, and lost-event runs. All traces go in one transaction into a temporary file that is \
        renamed over OUT at the end: an existing OUT is replaced only by a complete database.
        The schema is documented in docs/schema.md. Every command that reads a trace also reads the \
        database back as the trace it was imported from (--trace-id N picks one of several).
        """)

    @Argument(help: "Trace files, capture bundle directories or import databases (one trace each: --trace-id).")
    var traces: [String]

    @Option(name: .long, help: "Output database.")
    var db: String

    @OptionGroup var input: InputOptions

    func validate() throws {
        if traces.isEmpty { throw ValidationError("name at least one trace") }
    }

    func run() throws {
        let store: TraceStoreWriter
        do { store = try TraceStoreWriter(destination: db) } catch {
            warn("pagehint: \(db): cannot create the database: \(error)")
            throw ExitCode(73)
        }
        var total: Int64 = 0
        do {
            try store.transaction { db in
                for (i, t) in traces.enumerated() {
                    let ctx = TraceContext()
                    var w = try store.writer(db, id: i + 1, path: t)
                    try reportingErrors {
                        try readAnyTrace(path: t, options: input.readOptions(), into: &w, context: ctx)
                    }
                    try w.finish(ctx)
                    total += w.records
                    Progress.shared.finish()
                }
            }
            try store.commit()
        } catch let e as ExitCode {
            store.abandon()
            throw e
        } catch {
            store.abandon()
            warn("pagehint: \(db): \(error)")
            throw ExitCode(73)
        }
        warn("imported \(total) events from \(traces.count) trace(s) into \(db)")
    }
}
