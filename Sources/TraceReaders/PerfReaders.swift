import TraceModel
struct PerfScriptReader {
    let stream: ByteStream
    var progress: ((UInt64) -> Void)? = nil
    init(stream: ByteStream) { self.stream = stream }
    mutating func read<S: EventSink>(into sink: inout S, context ctx: TraceContext) throws {
        throw TraceError(.badData, file: stream.name, "perf script text: reader not built yet")
    }
}
struct PerfDataReader {
    let file: FileSource
    var progress: (@Sendable (UInt64, UInt64?) -> Void)? = nil
    init(file: FileSource, kallsyms: Kallsyms?) { self.file = file }
    mutating func read<S: EventSink>(into sink: inout S, context ctx: TraceContext) throws {
        throw TraceError(.badData, file: file.name, "perf.data: reader not built yet")
    }
}
func readBundle<S: EventSink>(path: String, options: ReadOptions, into sink: inout S, context ctx: TraceContext) throws {
    throw TraceError(.badData, file: path, "bundle: reader not built yet")
}
