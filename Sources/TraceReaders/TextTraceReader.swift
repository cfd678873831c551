import TraceModel

/// Reads the text that tracefs prints (`trace`, `trace_pipe`) and the text of `trace-cmd report`.
///
/// Both print one line per record, already in global timestamp order:
/// `COMM-PID [(TGID)] [CPU] [IRQ-INFO] SECONDS.MICROS: EVENT: PAYLOAD`, optionally behind a
/// `BUFFER:` instance prefix (trace-cmd report). Kernel stacks are records of their own that follow
/// their event on the same CPU: tracefs prints `<stack trace>` plus ` => func` lines, trace-cmd report
/// `kernel_stack: <stack trace >` plus `=> func (address)` lines. Each stack is attached to the
/// latest event of its CPU.
public struct TextTraceReader {
    public enum Dialect: Sendable { case tracefs, traceCmdReport }

    let stream: ByteStream
    let dialect: Dialect
    var decoder = PayloadDecoder()
    var pending = PendingEvents()
    var frameBuf: [SymbolID] = []
    /// The symbols of the stack being read, each followed by a newline. A stack seen before (the same
    /// text) is found whole in `stackBlocks` and costs one hash instead of one per frame; the symbols
    /// of a new stack are interned at its end, in order, as before.
    let stackText = ByteBuffer()
    var stackBlocks = StringTable()
    /// The stack id of each entry of `stackBlocks` (entry 0, the empty text, is the empty stack).
    var stackBlockIDs: [StackID] = [0]
    var inStack = false
    var stackCPU = -1
    var userStack = false
    public private(set) var fieldFailures = 0
    public private(set) var skippedLines = 0
    /// Called every few thousand lines with the number of bytes consumed (progress).
    public var progress: ((UInt64) -> Void)? = nil

    public init(stream: ByteStream, dialect: Dialect) {
        self.stream = stream
        self.dialect = dialect
    }

    public mutating func read<S: EventSink>(into sink: inout S, context ctx: TraceContext) throws {
        ctx.format = dialect == .tracefs ? "tracefs-text" : "trace-cmd-report"
        var lines = LineReader(stream)
        defer { lines.free() }
        var sawEvent = false
        var checked = 0
        let name = stream.name
        try lines.forEachLine { line, ln in
            if ln & 0xFFFF == 0 { progress?(stream.consumed) }
            try handle(line, lineNumber: ln, into: &sink, ctx, &sawEvent)
            checked += 1
            if checked == 2000 && !sawEvent {
                throw TraceError.badLine(name, ln, "no trace event in the first 2000 lines: not \(ctx.format) text")
            }
            return true
        }
        finishStack(ctx)
        pending.flushAll(into: &sink, ctx)
        // An empty trace (header comments only) is fine; text without any event line is not.
        if !sawEvent && skippedLines > 0 && ctx.lost.isEmpty {
            throw TraceError.badLine(name, 1, "no trace event found: not \(ctx.format) text")
        }
    }

    mutating func handle<S: EventSink>(_ line: UnsafeRawBufferPointer, lineNumber: Int, into sink: inout S,
                                       _ ctx: TraceContext, _ sawEvent: inout Bool) throws {
        let n = line.count
        if n == 0 { return }
        var i = 0
        while i < n && (line[i] == 0x20 || line[i] == 0x09) { i += 1 }
        if i >= n { return }
        let c0 = line[i]
        // Stack frames.
        if c0 == UInt8(ascii: "=") && i + 1 < n && line[i + 1] == UInt8(ascii: ">") {
            if inStack && !userStack {
                var s = i + 2
                while s < n && line[s] == 0x20 { s += 1 }
                var e = s
                while e < n && line[e] != 0x20 { e += 1 }
                if e > s { stackText.appendLine(UnsafeRawBufferPointer(rebasing: line[s..<e])) }
            }
            return
        }
        if inStack { finishStack(ctx) }
        if c0 == UInt8(ascii: "#") { return }
        // `CPU:N [LOST M EVENTS]` (tracefs) and `CPU:N [M EVENTS DROPPED]` (trace-cmd).
        if c0 == UInt8(ascii: "C") && n - i > 6 && line[i + 1] == UInt8(ascii: "P") && line[i + 2] == UInt8(ascii: "U")
            && line[i + 3] == UInt8(ascii: ":") {
            var j = i + 4
            var cpu = 0
            while j < n, line[j] >= 0x30 && line[j] <= 0x39 { cpu = cpu * 10 + Int(line[j] - 0x30); j += 1 }
            var count: UInt64 = 0
            var k = j
            while k < n && (line[k] < 0x30 || line[k] > 0x39) { k += 1 }
            while k < n && line[k] >= 0x30 && line[k] <= 0x39 { count = count * 10 + UInt64(line[k] - 0x30); k += 1 }
            ctx.lost.append(LostEvents(cpu: cpu, timestamp: pending.lastTimestamp, count: count))
            ctx.noteCPU(cpu)
            return
        }
        if dialect == .traceCmdReport && n - i > 5 && c0 == UInt8(ascii: "c") && line[i + 1] == UInt8(ascii: "p")
            && line[i + 2] == UInt8(ascii: "u") && line[i + 3] == UInt8(ascii: "s") && line[i + 4] == UInt8(ascii: "=") {
            var cpus = 0
            var j = i + 5
            while j < n, line[j] >= 0x30 && line[j] <= 0x39 { cpus = cpus * 10 + Int(line[j] - 0x30); j += 1 }
            if cpus > ctx.cpus { ctx.cpus = cpus }
            return
        }
        guard let h = parseHeader(line, from: i) else {
            skippedLines += 1
            return
        }
        // Event name.
        var ns = h.rest
        while ns < n && line[ns] == 0x20 { ns += 1 }
        if ns < n && line[ns] == UInt8(ascii: "<") {
            // tracefs `<stack trace>` / `<user stack trace>`.
            let isUser = n - ns > 6 && line[ns + 1] == UInt8(ascii: "u")
            startStack(cpu: h.cpu, user: isUser)
            return
        }
        var ne = ns
        while ne < n && line[ne] != UInt8(ascii: ":") && line[ne] != 0x20 { ne += 1 }
        if ne >= n || line[ne] != UInt8(ascii: ":") || ne == ns {
            skippedLines += 1
            return
        }
        let nameBytes = UnsafeRawBufferPointer(rebasing: line[ns..<ne])
        if nameBytes.count == 12 && Self.kernelStack.withUnsafeBytes({ memEqualBytes(nameBytes, $0) }) {
            startStack(cpu: h.cpu, user: false)
            return
        }
        if nameBytes.count == 10 && Self.userStack.withUnsafeBytes({ memEqualBytes(nameBytes, $0) }) {
            startStack(cpu: h.cpu, user: true)
            return
        }
        var e = Event()
        let isMarker = nameBytes.count == 18 && Self.markWrite.withUnsafeBytes({ memEqualBytes(nameBytes, $0) })
        e.type = isMarker ? PayloadDecoder.registerType(ctx, name: "print") : typeID(nameBytes, ctx)
        e.timestamp = h.timestamp
        e.cpu = UInt16(truncatingIfNeeded: h.cpu)
        e.pid = h.pid
        e.comm = ctx.strings.intern(UnsafeRawBufferPointer(rebasing: line[h.commStart..<h.commEnd]))
        e.source = UInt64(lineNumber)
        e.commonFlags = h.irqFlags
        var ps = ne + 1
        if ps < n && line[ps] == 0x20 { ps += 1 }
        if isMarker || ctx.types[Int(e.type)].name == "print" {
            // Marker text is free-form: it is the `buf` field whole (report adds the `ip` symbol first).
            var bs = ps
            if !isMarker, let c = indexOf(line, UInt8(ascii: ":"), from: ps), c + 1 < n, line[c + 1] == 0x20 { bs = c + 2 }
            var be = n
            while be > bs && line[be - 1] == 0x20 { be -= 1 }
            let t = ctx.types[Int(e.type)]
            e.fieldCount = UInt8(min(t.fields.count, Event.maxFields))
            for k in 0..<Int(e.fieldCount) { e.values[k] = 0 }
            if let bi = t.fieldIndex("buf"), bi < Int(e.fieldCount) {
                e.values[bi] = Int64(ctx.strings.intern(UnsafeRawBufferPointer(rebasing: line[bs..<be])))
            }
        } else {
            fieldFailures += decoder.decode(UnsafeRawBufferPointer(rebasing: line[ps...]), into: &e, ctx)
        }
        ctx.noteCPU(h.cpu)
        sawEvent = true
        pending.push(e, into: &sink, ctx)
    }

    static let kernelStack: [UInt8] = Array("kernel_stack".utf8)
    static let markWrite: [UInt8] = Array("tracing_mark_write".utf8)
    static let userStack: [UInt8] = Array("user_stack".utf8)

    /// Event names seen (entry k of `typeNames` is type `typeOfName[k]`; entry 0, the empty name, unused).
    var typeNames = StringTable()
    var typeOfName: [EventTypeID] = [0]

    mutating func typeID(_ name: UnsafeRawBufferPointer, _ ctx: TraceContext) -> EventTypeID {
        if let k = typeNames.lookup(name), k != 0 { return typeOfName[Int(k)] }
        let id = PayloadDecoder.registerType(ctx, name: String(decoding: name, as: UTF8.self))
        let k = typeNames.intern(name)
        if Int(k) == typeOfName.count { typeOfName.append(id) } else { typeOfName[Int(k)] = id }
        return id
    }

    mutating func startStack(cpu: Int, user: Bool) {
        inStack = true
        userStack = user
        stackCPU = cpu
        stackText.count = 0
    }

    mutating func finishStack(_ ctx: TraceContext) {
        guard inStack else { return }
        inStack = false
        if userStack { return }
        let id: StackID
        let text = stackText.bytes
        if let k = stackBlocks.lookup(text) {
            id = stackBlockIDs[Int(k)]
        } else {
            frameBuf.removeAll(keepingCapacity: true)
            var s = 0
            for i in 0..<text.count where text[i] == 0x0A {
                frameBuf.append(ctx.symbols.intern(UnsafeRawBufferPointer(rebasing: text[s..<i])))
                s = i + 1
            }
            id = frameBuf.withUnsafeBufferPointer { ctx.stacks.intern($0) }
            _ = stackBlocks.intern(text)
            stackBlockIDs.append(id)
        }
        pending.attachStack(id, cpu: stackCPU)
    }

    /// Bytes gathered line by line (a stack's symbols), in a buffer reused from stack to stack.
    final class ByteBuffer {
        private var base = UnsafeMutablePointer<UInt8>.allocate(capacity: 4096)
        private var capacity = 4096
        var count = 0

        /// `line` and a newline.
        @inline(__always)
        func appendLine(_ line: UnsafeRawBufferPointer) {
            let n = line.count
            if count + n + 1 > capacity {
                var c = capacity * 2
                while count + n + 1 > c { c *= 2 }
                regrow(&base, count: count, capacity: c)
                capacity = c
            }
            if n > 0 { (base + count).update(from: line.baseAddress!.assumingMemoryBound(to: UInt8.self), count: n) }
            base[count + n] = 0x0A
            count += n + 1
        }

        var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

        deinit { base.deallocate() }
    }

    struct Header {
        var commStart: Int
        var commEnd: Int
        var pid: Int32
        var cpu: Int
        var irqFlags: UInt8
        var timestamp: UInt64
        var rest: Int
    }

    /// Parses `COMM-PID [(TGID)] [CPU] [FLAGS] SECS.FRAC:` starting at `i`; returns where the event name starts.
    func parseHeader(_ line: UnsafeRawBufferPointer, from start: Int) -> Header? {
        let n = line.count
        // Find the CPU bracket: `[digits]` preceded by the pid (and optional tgid column).
        var b = start
        while true {
            guard let (lb, j, cpu) = nextCPUBracket(line, from: b) else { return nil }
            b = lb + 1
            if lb == start { continue }   // nothing before it: no COMM-PID
            // Walk back over spaces and an optional `(  tgid)` to the pid.
            var k = lb - 1
            while k > start && line[k] == 0x20 { k -= 1 }
            if line[k] == UInt8(ascii: ")") {
                while k > start && line[k] != UInt8(ascii: "(") { k -= 1 }
                k -= 1
                while k > start && line[k] == 0x20 { k -= 1 }
            }
            let pidEnd = k + 1
            var pidStart = pidEnd
            while pidStart > start && line[pidStart - 1] >= 0x30 && line[pidStart - 1] <= 0x39 { pidStart -= 1 }
            if pidStart == pidEnd || pidStart - 1 < start || line[pidStart - 1] != UInt8(ascii: "-") { continue }
            var pid: Int32 = 0
            for q in pidStart..<pidEnd { pid = pid &* 10 &+ Int32(line[q] - 0x30) }
            var commStart = start
            let commEnd = pidStart - 1
            // trace-cmd report: an instance name `NAME:` before the comm.
            if dialect == .traceCmdReport {
                var w = start
                while w < commEnd && line[w] != 0x20 { w += 1 }
                if w < commEnd && w > start && line[w - 1] == UInt8(ascii: ":") {
                    commStart = w
                    while commStart < commEnd && line[commStart] == 0x20 { commStart += 1 }
                }
            }
            // After the bracket: optional irq-info, then the timestamp ending in ':'.
            var t = j + 1
            var irq: UInt8 = 0
            while t < n && line[t] == 0x20 { t += 1 }
            var te = t
            while te < n && line[te] != 0x20 { te += 1 }
            if te > t && line[te - 1] != UInt8(ascii: ":") {
                irq = Self.irqBits(UnsafeRawBufferPointer(rebasing: line[t..<te]))
                t = te
                while t < n && line[t] == 0x20 { t += 1 }
                te = t
                while te < n && line[te] != 0x20 { te += 1 }
            }
            guard te > t + 1, line[te - 1] == UInt8(ascii: ":"), let ts = Self.parseTimestamp(UnsafeRawBufferPointer(rebasing: line[t..<(te - 1)])) else {
                return nil
            }
            return Header(commStart: commStart, commEnd: commEnd, pid: pid, cpu: cpu, irqFlags: irq, timestamp: ts, rest: te)
        }
    }

    /// tracefs irq-info column: `d` irqs off, `N`/`n` need-resched, `h`/`s`/`H` hard/soft irq.
    static func irqBits(_ f: UnsafeRawBufferPointer) -> UInt8 {
        var bits: UInt8 = 0
        if f.count > 0 && (f[0] == UInt8(ascii: "d") || f[0] == UInt8(ascii: "D")) { bits |= 0x01 }
        if f.count > 1 && f[1] != UInt8(ascii: ".") { bits |= 0x04 }
        if f.count > 2 {
            switch f[2] {
            case UInt8(ascii: "h"): bits |= 0x08
            case UInt8(ascii: "s"): bits |= 0x10
            case UInt8(ascii: "H"): bits |= 0x18
            default: break
            }
        }
        return bits
    }

    /// `SECONDS.FRACTION` to nanoseconds (6 or 9 fraction digits).
    static func parseTimestamp(_ v: UnsafeRawBufferPointer) -> UInt64? {
        var secs: UInt64 = 0
        var i = 0
        let n = v.count
        while i < n && v[i] != UInt8(ascii: ".") {
            let d = v[i] &- 0x30
            if d > 9 { return nil }
            secs = secs &* 10 &+ UInt64(d)
            i += 1
        }
        if i == 0 { return nil }
        var frac: UInt64 = 0
        var digits = 0
        if i < n {
            i += 1
            while i < n {
                let d = v[i] &- 0x30
                if d > 9 { return nil }
                if digits < 9 { frac = frac * 10 + UInt64(d); digits += 1 }
                i += 1
            }
        }
        while digits < 9 { frac *= 10; digits += 1 }
        return secs &* 1_000_000_000 &+ frac
    }
}

/// The next `[digits]` at or after `from`: where `[` and `]` stand, and the number (the CPU column of
/// tracefs, trace-cmd report and perf script lines).
func nextCPUBracket(_ line: UnsafeRawBufferPointer, from: Int) -> (open: Int, close: Int, cpu: Int)? {
    var b = from
    let n = line.count
    while let lb = indexOf(line, UInt8(ascii: "["), from: b) {
        var j = lb + 1
        var cpu = 0
        while j < n, line[j] >= 0x30 && line[j] <= 0x39, cpu < 1 << 20 { cpu = cpu * 10 + Int(line[j] - 0x30); j += 1 }
        if j > lb + 1 && j < n && line[j] == UInt8(ascii: "]") { return (lb, j, cpu) }
        b = lb + 1
    }
    return nil
}

@inline(__always)
func indexOf(_ p: UnsafeRawBufferPointer, _ c: UInt8, from: Int) -> Int? {
    if from >= p.count { return nil }
    guard let r = memchr(p.baseAddress! + from, Int32(c), p.count - from) else { return nil }
    return p.baseAddress!.distance(to: UnsafeRawPointer(r))
}

/// Events whose stack may still follow. A text trace prints a record's stack right after it on the same
/// CPU, but another CPU's records can come in between; events are held until their CPU moves on, then
/// released in their original order. The hold is bounded.
struct PendingEvents {
    var ring: [Event] = []
    var done: [Bool] = []
    var head = 0
    var count = 0
    /// Position (absolute sequence) of the latest event per CPU that may still get a stack.
    var open: [Int] = []
    var seq = 0
    var lastTimestamp: UInt64 = 0
    static let capacity = 4096

    init() {
        ring = Array(repeating: Event(), count: Self.capacity)
        done = Array(repeating: false, count: Self.capacity)
    }

    mutating func push<S: EventSink>(_ e: Event, into sink: inout S, _ ctx: TraceContext) {
        let cpu = Int(e.cpu)
        while open.count <= cpu { open.append(-1) }
        if open[cpu] >= seq - count { done[open[cpu] % Self.capacity] = true }
        if count == Self.capacity {
            done[head] = true
            release(into: &sink, ctx)
        }
        let slot = seq % Self.capacity
        ring[slot] = e
        done[slot] = false
        open[cpu] = seq
        seq += 1
        count += 1
        lastTimestamp = e.timestamp
        release(into: &sink, ctx)
    }

    mutating func attachStack(_ id: StackID, cpu: Int) {
        guard cpu < open.count, open[cpu] >= 0, open[cpu] >= seq - count else { return }
        let slot = open[cpu] % Self.capacity
        if !done[slot] && ring[slot].stack == 0 {
            ring[slot].stack = id
            done[slot] = true
        }
        open[cpu] = -1
    }

    mutating func release<S: EventSink>(into sink: inout S, _ ctx: TraceContext) {
        while count > 0 && done[head] {
            sink.consume(ring[head], context: ctx)
            head = (head + 1) % Self.capacity
            count -= 1
        }
    }

    mutating func flushAll<S: EventSink>(into sink: inout S, _ ctx: TraceContext) {
        while count > 0 {
            sink.consume(ring[head], context: ctx)
            head = (head + 1) % Self.capacity
            count -= 1
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
