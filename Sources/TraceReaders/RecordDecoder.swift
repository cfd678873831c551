import Foundation
import TraceModel

/// Decodes raw tracepoint records (the bytes the kernel writes into the ring buffer, also carried as
/// perf's RAW sample payload) into `Event` fields, by name and offset from the event's format file.
final class RecordDecoder {
    /// How to read one field: the parts of its `FormatField` that decoding needs, without strings.
    struct FieldOp {
        var offset: Int
        var size: Int
        var isString: Bool
        var isDataLoc: Bool
        var isRelLoc: Bool
        var isArray: Bool
        var signed: Bool
    }
    /// Plain values only (its fields are `ops[opStart..<opEnd]`): no reference counting per record.
    struct Plan {
        var type: EventTypeID
        var opStart: Int
        var opEnd: Int
        var isKernelStack: Bool
        var stackSizeOffset: Int
        var stackCallerOffset: Int
    }
    private var plans: [Int: Int] = [:]   // kernel event id → index in planList
    private var planList: [Plan] = []
    private var ops: [FieldOp] = []
    private var dense: [Int32] = []      // kernel event id → plan index, -1
    var commonTypeOffset = 0, commonTypeSize = 2
    var commonFlagsOffset = 2
    var commonPidOffset = 4
    var longSize = 8
    var bigEndian = false
    private(set) var unknownIDs: [Int: Int] = [:]
    /// Format texts not parsed yet, by kernel event id (most of a trace.dat's 1000+ formats are never used).
    private var lazy: [Int: (system: String, text: ArraySlice<UInt8>)] = [:]
    private var registeredCount = 0

    /// Keeps a format text to parse when its id is first seen. Formats without an `ID:` line are dropped.
    func registerLazily(_ text: ArraySlice<UInt8>, system: String, _ ctx: TraceContext) {
        guard let id = Self.scanID(text) else { return }
        if system == "ftrace" && Self.contains(text, "name: kernel_stack") {
            if let f = EventFormat.parse(String(decoding: text, as: UTF8.self), system: system) { register(f, ctx) }
            return
        }
        lazy[id] = (system, text)
        registeredCount += 1
    }

    static func contains(_ t: ArraySlice<UInt8>, _ s: String) -> Bool {
        let needle = Array(s.utf8)
        guard t.count >= needle.count else { return false }
        var i = t.startIndex
        while i + needle.count <= t.endIndex {
            if t[i] == needle[0] && t[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }

    /// The number after `ID:` in a format text.
    static func scanID(_ t: ArraySlice<UInt8>) -> Int? {
        var i = t.startIndex
        while i + 3 < t.endIndex {
            if t[i] == UInt8(ascii: "I") && t[i + 1] == UInt8(ascii: "D") && t[i + 2] == UInt8(ascii: ":")
                && (i == t.startIndex || t[i - 1] == 0x0A) {
                var k = i + 3
                while k < t.endIndex && t[k] == 0x20 { k += 1 }
                var v = 0, digits = 0
                while k < t.endIndex && t[k] >= 0x30 && t[k] <= 0x39 && digits < 9 { v = v * 10 + Int(t[k] - 0x30); k += 1; digits += 1 }
                return digits > 0 ? v : nil
            }
            i += 1
        }
        return nil
    }

    /// Registers every format; ids must be unique.
    func register(_ f: EventFormat, _ ctx: TraceContext) {
        for c in f.commonFields {
            switch c.name {
            case "common_type": commonTypeOffset = c.offset; commonTypeSize = c.size
            case "common_flags": commonFlagsOffset = c.offset
            case "common_pid": commonPidOffset = c.offset
            default: break
            }
        }
        let isStack = f.system == "ftrace" && f.name == "kernel_stack"
        var type: EventTypeID = 0
        if !isStack || true {
            let kept = Array(f.fields.prefix(Event.maxFields))
            type = ctx.addType(system: f.system, name: f.name,
                               fields: kept.map { FieldInfo(name: $0.name, kind: $0.kind) }, inferred: false)
        }
        var sizeOff = -1, callerOff = -1
        if isStack {
            sizeOff = f.fields.first { $0.name == "size" }?.offset ?? -1
            callerOff = f.fields.first { $0.name == "caller" }?.offset ?? -1
        }
        let ops = f.fields.prefix(Event.maxFields).map {
            FieldOp(offset: $0.offset, size: $0.size, isString: $0.isString, isDataLoc: $0.isDataLoc,
                    isRelLoc: $0.isRelLoc, isArray: $0.isArray, signed: $0.signed)
        }
        let plan = Plan(type: type, opStart: self.ops.count, opEnd: self.ops.count + ops.count, isKernelStack: isStack,
                        stackSizeOffset: sizeOff, stackCallerOffset: callerOff)
        self.ops.append(contentsOf: ops)
        plans[f.id] = planList.count
        if f.id >= 0 && f.id < 1 << 16 {
            while dense.count <= f.id { dense.append(-1) }
            dense[f.id] = Int32(planList.count)
        }
        planList.append(plan)
    }

    var isEmpty: Bool { planList.isEmpty && lazy.isEmpty }

    @inline(__always)
    func readUInt(_ p: UnsafeRawBufferPointer, _ off: Int, _ size: Int) -> UInt64 {
        switch size {
        case 1: return UInt64(p.load(fromByteOffset: off, as: UInt8.self))
        case 2:
            let v = p.loadUnaligned(fromByteOffset: off, as: UInt16.self)
            return UInt64(bigEndian ? v.byteSwapped : v)
        case 4:
            let v = p.loadUnaligned(fromByteOffset: off, as: UInt32.self)
            return UInt64(bigEndian ? v.byteSwapped : v)
        case 8:
            let v = p.loadUnaligned(fromByteOffset: off, as: UInt64.self)
            return bigEndian ? v.byteSwapped : v
        default: return 0
        }
    }

    enum Result {
        case event
        /// A kernel_stack record: frames were written to the decoder's `frames`.
        case stack
        case unknown(Int)
        case tooShort
    }

    /// Raw return addresses of the last kernel_stack record decoded: the first `frameCount` of
    /// `frameBuffer` (reused from record to record).
    private var frameBuffer: [UInt64] = []
    private(set) var frameCount = 0

    /// The frames of the last kernel_stack record decoded.
    func withFrames<R>(_ body: (UnsafeBufferPointer<UInt64>) -> R) -> R {
        frameBuffer.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[0..<frameCount])) }
    }

    /// Decodes one record into `e` (type, pid, common flags, fields).
    func decode(_ rec: UnsafeRawBufferPointer, into e: inout Event, _ ctx: TraceContext) -> Result {
        if rec.count < commonPidOffset + 4 || rec.count < commonTypeOffset + commonTypeSize { return .tooShort }
        let id = Int(readUInt(rec, commonTypeOffset, commonTypeSize))
        var pi = -1
        if id < dense.count { pi = Int(dense[id]) } else if let x = plans[id] { pi = x }
        if pi < 0, let l = lazy.removeValue(forKey: id),
           let f = EventFormat.parse(String(decoding: l.text, as: UTF8.self), system: l.system) {
            register(f, ctx)
            pi = plans[id] ?? -1
        }
        if pi < 0 {
            unknownIDs[id, default: 0] += 1
            let t = ctx.addType(system: "unknown", name: "event_\(id)", fields: [], inferred: true)
            e.type = t
            e.fieldCount = 0
            e.pid = Int32(bitPattern: UInt32(truncatingIfNeeded: readUInt(rec, commonPidOffset, 4)))
            return .unknown(id)
        }
        let plan = planList[pi]
        return ops.withUnsafeBufferPointer { decode(rec, plan: plan, ops: UnsafeBufferPointer(rebasing: $0[plan.opStart..<plan.opEnd]), into: &e, ctx) }
    }

    @inline(__always)
    private func decode(_ rec: UnsafeRawBufferPointer, plan: Plan, ops: UnsafeBufferPointer<FieldOp>, into e: inout Event,
                        _ ctx: TraceContext) -> Result {
        e.pid = Int32(bitPattern: UInt32(truncatingIfNeeded: readUInt(rec, commonPidOffset, 4)))
        e.commonFlags = rec.load(fromByteOffset: commonFlagsOffset, as: UInt8.self)
        e.type = plan.type
        if plan.isKernelStack {
            frameCount = 0
            if plan.stackCallerOffset >= 0 && plan.stackSizeOffset >= 0 && rec.count >= plan.stackSizeOffset + 4 {
                let declared = Int(Int32(bitPattern: UInt32(truncatingIfNeeded: readUInt(rec, plan.stackSizeOffset, 4))))
                let room = max(0, (rec.count - plan.stackCallerOffset) / longSize)
                // `size` counts entries on current kernels; older ones stored bytes. Never trust it past the record.
                var n = declared > room ? (declared / longSize <= room ? declared / longSize : room) : declared
                if n < 0 { n = 0 }
                if frameBuffer.count < n { frameBuffer = [UInt64](repeating: 0, count: max(n, 2 * frameBuffer.count)) }
                let at = plan.stackCallerOffset
                let c: Int = frameBuffer.withUnsafeMutableBufferPointer { fb in
                    var c = 0
                    if longSize == 8 {
                        for k in 0..<n {
                            let raw = rec.loadUnaligned(fromByteOffset: at + 8 * k, as: UInt64.self)
                            let a = bigEndian ? raw.byteSwapped : raw
                            if a == 0 || a == UInt64.max { break }
                            fb[c] = a
                            c += 1
                        }
                    } else {
                        for k in 0..<n {
                            let a = readUInt(rec, at + k * longSize, longSize)
                            if a == 0 || a == UInt64.max { break }
                            fb[c] = a
                            c += 1
                        }
                    }
                    return c
                }
                frameCount = c
            }
            return .stack
        }
        var nf = 0
        for f in ops {
            var v: Int64 = 0
            if f.isString {
                var start = f.offset, len = f.size
                if f.isDataLoc || f.isRelLoc {
                    if f.offset + 4 <= rec.count {
                        let loc = readUInt(rec, f.offset, 4)
                        start = Int(loc & 0xFFFF) + (f.isRelLoc ? f.offset + 4 : 0)
                        len = Int(loc >> 16)
                    } else { len = 0 }
                }
                // `char buf[]` (size 0): a flexible array running to the end of the record.
                if !(f.isDataLoc || f.isRelLoc) && f.size == 0 { len = max(0, rec.count - start) }
                if start < 0 || start > rec.count { len = 0; start = 0 }
                if start + len > rec.count { len = rec.count - start }
                var end = start
                while end < start + len && rec[end] != 0 { end += 1 }
                if f.size == 0 { while end > start && rec[end - 1] == 0x0A { end -= 1 } }
                v = Int64(ctx.strings.intern(UnsafeRawBufferPointer(rebasing: rec[start..<end])))
            } else if f.isArray || f.offset + f.size > rec.count || f.size > 8 {
                v = 0
            } else {
                let u = readUInt(rec, f.offset, f.size)
                if f.signed {
                    switch f.size {
                    case 1: v = Int64(Int8(truncatingIfNeeded: u))
                    case 2: v = Int64(Int16(truncatingIfNeeded: u))
                    case 4: v = Int64(Int32(truncatingIfNeeded: u))
                    default: v = Int64(bitPattern: u)
                    }
                } else {
                    v = Int64(bitPattern: u)
                }
            }
            e.values[nf] = v
            nf += 1
        }
        e.fieldCount = UInt8(nf)
        return .event
    }
}

/// Parses a `header_page` description: returns the size of the `commit` field (the kernel's long).
func headerPageCommitSize(_ text: String) -> Int? {
    for line in text.split(separator: "\n") where line.contains("commit;") {
        if let r = line.range(of: "size:") {
            let rest = line[r.upperBound...]
            return Int(rest.prefix { $0.isNumber })
        }
    }
    return nil
}
