import TraceModel

/// Reads the default text of `perf script` for tracepoint samples:
/// `COMM TID [CPU] SECONDS.MICROS: [PERIOD] SYSTEM:EVENT: PAYLOAD`, followed by callchain lines
/// `\tADDRESS SYMBOL+OFFSET (DSO)` and a blank line. Kernel frames (kernel addresses) become the stack;
/// user frames are dropped, as in every other format.
struct PerfScriptReader {
    let stream: ByteStream
    var progress: ((UInt64) -> Void)? = nil
    var decoder = PayloadDecoder()
    var current: Event? = nil
    var frames: [SymbolID] = []
    var typeCache: [[UInt8]: EventTypeID] = [:]
    var skipped = 0

    init(stream: ByteStream) { self.stream = stream }

    mutating func read<S: EventSink>(into sink: inout S, context ctx: TraceContext) throws {
        ctx.format = "perf-script"
        var lines = LineReader(stream)
        defer { lines.free() }
        var events = 0
        let name = stream.name
        try lines.forEachLine { line, ln in
            if ln & 0xFFFF == 0 { progress?(stream.consumed) }
            try handle(line, ln, into: &sink, ctx, &events)
            if ln == 2000 && events == 0 {
                throw TraceError.badLine(name, ln, "no sample in the first 2000 lines: not perf script text")
            }
            return true
        }
        emit(into: &sink, ctx)
        if events == 0 && skipped > 0 { throw TraceError.badLine(name, 1, "no sample found: not perf script text") }
    }

    mutating func emit<S: EventSink>(into sink: inout S, _ ctx: TraceContext) {
        guard var e = current else { return }
        e.stack = frames.withUnsafeBufferPointer { ctx.stacks.intern($0) }
        sink.consume(e, context: ctx)
        current = nil
        frames.removeAll(keepingCapacity: true)
    }

    mutating func handle<S: EventSink>(_ line: UnsafeRawBufferPointer, _ ln: Int, into sink: inout S,
                                       _ ctx: TraceContext, _ events: inout Int) throws {
        let n = line.count
        if n == 0 { emit(into: &sink, ctx); return }
        if line[0] == UInt8(ascii: "#") { return }
        if line[0] == 0x09 || (line[0] == 0x20 && current != nil && isFrame(line)) {
            // Callchain frame: ADDRESS SYMBOL[+OFF] (DSO)
            var i = 0
            while i < n && (line[i] == 0x09 || line[i] == 0x20) { i += 1 }
            var addr: UInt64 = 0
            let as_ = i
            while i < n, let d = hexDigit(line[i]) { addr = addr << 4 | UInt64(d); i += 1 }
            if i == as_ { return }
            guard addr >= 0xffff_8000_0000_0000 else { return }   // user frame
            while i < n && line[i] == 0x20 { i += 1 }
            var e = i
            while e < n && line[e] != 0x20 && line[e] != UInt8(ascii: "+") { e += 1 }
            let sym = UnsafeRawBufferPointer(rebasing: line[i..<e])
            if sym.count == 9 && sym[0] == UInt8(ascii: "[") && sym[1] == UInt8(ascii: "u") {
                frames.append(ctx.symbols.intern("0x" + String(addr, radix: 16)))
            } else {
                frames.append(ctx.symbols.intern(sym))
            }
            return
        }
        emit(into: &sink, ctx)
        guard let (e0, payloadStart) = parseHeader(line, ctx) else { skipped += 1; return }
        var e = e0
        e.source = UInt64(ln)
        _ = decoder.decode(UnsafeRawBufferPointer(rebasing: line[payloadStart...]), into: &e, ctx)
        ctx.noteCPU(Int(e.cpu))
        current = e
        events += 1
    }

    func isFrame(_ line: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i < line.count && line[i] == 0x20 { i += 1 }
        var k = i
        while k < line.count, hexDigit(line[k]) != nil { k += 1 }
        return k - i >= 8 && k < line.count && line[k] == 0x20
    }

    /// `COMM TID [CPU] SECS.FRAC: [PERIOD] SYSTEM:EVENT: ` → event, payload start.
    mutating func parseHeader(_ line: UnsafeRawBufferPointer, _ ctx: TraceContext) -> (Event, Int)? {
        let n = line.count
        var b = 0
        while true {
            guard let (lb, j, cpu) = nextCPUBracket(line, from: b) else { return nil }
            b = lb + 1
            if lb == 0 { continue }
            // Before the bracket: COMM, spaces, [PID/]TID.
            var k = lb - 1
            while k >= 0 && line[k] == 0x20 { k -= 1 }
            let tidEnd = k + 1
            var tidStart = tidEnd
            while tidStart > 0 && line[tidStart - 1] >= 0x30 && line[tidStart - 1] <= 0x39 { tidStart -= 1 }
            if tidStart == tidEnd { continue }
            var tid: Int32 = 0
            for q in tidStart..<tidEnd { tid = tid &* 10 &+ Int32(line[q] - 0x30) }
            var commEnd = tidStart
            if commEnd > 0 && line[commEnd - 1] == UInt8(ascii: "/") {
                commEnd -= 1
                while commEnd > 0 && line[commEnd - 1] >= 0x30 && line[commEnd - 1] <= 0x39 { commEnd -= 1 }
            }
            while commEnd > 0 && line[commEnd - 1] == 0x20 { commEnd -= 1 }
            var commStart = 0
            while commStart < commEnd && line[commStart] == 0x20 { commStart += 1 }
            // After: timestamp, optional period, SYSTEM:EVENT:
            var t = j + 1
            while t < n && line[t] == 0x20 { t += 1 }
            var te = t
            while te < n && line[te] != 0x20 { te += 1 }
            guard te > t + 1, line[te - 1] == UInt8(ascii: ":"),
                  let ts = TextTraceReader.parseTimestamp(UnsafeRawBufferPointer(rebasing: line[t..<(te - 1)])) else { return nil }
            var w = te
            var nameStart = -1, nameEnd = -1, payload = n
            for _ in 0..<3 {
                while w < n && line[w] == 0x20 { w += 1 }
                var we = w
                while we < n && line[we] != 0x20 { we += 1 }
                if we > w && line[we - 1] == UInt8(ascii: ":") {
                    // SYSTEM:EVENT:
                    var colon = -1
                    for q in w..<(we - 1) where line[q] == UInt8(ascii: ":") { colon = q }
                    if colon > w { nameStart = colon + 1; nameEnd = we - 1; payload = we < n ? we + 1 : n; break }
                }
                w = we
            }
            if nameStart < 0 { return nil }
            var e = Event()
            let key = Array(line[nameStart..<nameEnd])
            if let tt = typeCache[key] { e.type = tt } else {
                let tt = PayloadDecoder.registerType(ctx, name: String(decoding: key, as: UTF8.self))
                typeCache[key] = tt
                e.type = tt
            }
            e.timestamp = ts
            e.cpu = UInt16(truncatingIfNeeded: cpu)
            e.pid = tid
            e.comm = ctx.strings.intern(UnsafeRawBufferPointer(rebasing: line[commStart..<commEnd]))
            return (e, payload)
        }
    }
}
