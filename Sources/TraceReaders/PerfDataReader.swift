import TraceModel

#if canImport(Glibc)
import Glibc
#endif

/// A memory mapping from a perf MMAP/MMAP2 record (kept for address → file resolution).
public struct PerfMapping: Sendable {
    public var pid: Int32
    public var start: UInt64
    public var length: UInt64
    public var pgoff: UInt64
    public var major: UInt32
    public var minor: UInt32
    public var ino: UInt64
    public var filename: String
}

/// Reads `perf.data` (PERFILE2), file mode and pipe mode (spooled to a temporary file first), including
/// zstd `PERF_RECORD_COMPRESSED` records. Tracepoint samples (RAW payload) are decoded through the
/// event formats of the HEADER_TRACING_DATA feature; kernel callchains are symbolised with kallsyms.
/// Samples are ordered like perf's ordered-events queue: buffered, and flushed at each
/// FINISHED_ROUND up to the newest timestamp of the round before.
struct PerfDataReader {
    let file: FileSource
    var progress: (@Sendable (UInt64, UInt64?) -> Void)? = nil
    var kallsyms: Kallsyms?
    var name: String { file.name }

    struct Attr {
        var type: UInt32
        var config: UInt64
        var sampleType: UInt64
        var sampleIdAll: Bool
        var ids: [UInt64]
    }
    var attrs: [Attr] = []
    var attrByID = FastMap<UInt64, Int>(emptyKey: 0, emptyValue: 0, capacity: 64)
    var tracing = TraceDatReader?.none
    /// The record decoder of `tracing` (a reference: samples use it without copying the reader).
    var decoder: RecordDecoder? = nil
    var comms = PidMap()
    var mappings: [PerfMapping] = []
    /// Samples waiting for their round to end: the event without its field values (in `bufferedValues`).
    var buffered: [BufferedSample] = []
    var bufferedValues: [Int64] = []
    /// Where the values of samples still waiting after a flush are gathered (kept, like the queue's own
    /// capacity, from flush to flush).
    var spareValues: [Int64] = []
    /// COMM and FORK records, applied in time order with the samples so each sample gets the comm its
    /// thread had at that moment: (time, seq, tid, comm or 0 for "inherit from parent", parent tid).
    var taskOps: [(ts: UInt64, seq: UInt64, tid: Int32, comm: StringID, parent: Int32)] = []
    var seq: UInt64 = 0
    var maxTS: UInt64 = 0
    var nextFlush: UInt64 = 0
    var symCache = FastMap<UInt64, SymbolID>(emptyKey: 0, emptyValue: 0, capacity: 1024)
    var frameIDs: [SymbolID] = []
    /// Kernel frames of the current sample's callchain (the first `kernelCount`), and the stacks already
    /// interned for such frames.
    var kernelIPs: [UInt64] = []
    var kernelCount = 0
    var stackCache = RawStackCache()
    /// Reused window of the data section.
    var block: UnsafeMutableRawBufferPointer? = nil
    var zstd: ZstdBlockStream? = nil
    var pipeMode = false
    var samplesWithoutFormat = 0
    var nonTracepointSamples = 0

    init(file: FileSource, kallsyms: Kallsyms?) {
        self.file = file
        self.kallsyms = kallsyms
    }

    func bytes(at offset: UInt64, count: UInt64, what: String) throws -> [UInt8] {
        if count > file.size || offset > file.size - count {
            throw TraceError.bad(name, offset, "\(what) of \(count) bytes runs past the end of the file (\(file.size) bytes)")
        }
        return try file.pread(count: Int(count), at: offset, what: what)
    }

    mutating func read<S: EventSink>(into sink: inout S, context ctx: TraceContext) throws {
        // Room for a large round of samples (tens of thousands): reserved memory is only touched as it is
        // used, while growing into it by doubling would copy the queue and touch every page again.
        buffered.reserveCapacity(1 << 16)
        bufferedValues.reserveCapacity(1 << 18)
        spareValues.reserveCapacity(1 << 18)
        ctx.format = "perf.data"
        var h = Cursor(try bytes(at: 0, count: min(file.size, 16), what: "perf header"), base: 0, file: name, bigEndian: false)
        _ = try h.take(8, "magic")
        let hsize = try h.u64("header size")
        if hsize == 16 {
            pipeMode = true
            ctx.format = "perf.data-pipe"
            try readRecords(from: 16, to: file.size, into: &sink, ctx)
        } else {
            if hsize < 104 || hsize > 4096 { throw TraceError.bad(name, 8, "perf header size \(hsize) is not 104 (file) or 16 (pipe)") }
            var c = Cursor(try bytes(at: 0, count: hsize, what: "perf header"), base: 0, file: name, bigEndian: false)
            c.pos = 16
            let attrSize = try c.u64("attr size")
            let attrOff = try c.u64("attrs offset"), attrLen = try c.u64("attrs size")
            let dataOff = try c.u64("data offset"), dataLen = try c.u64("data size")
            _ = try c.u64("event types offset"); _ = try c.u64("event types size")
            var features: [UInt64] = []
            for _ in 0..<4 { features.append(try c.u64("feature bitmap")) }
            if attrSize < 16 || attrSize > 4096 { throw TraceError.bad(name, 16, "attr entry size \(attrSize) is implausible") }
            if attrLen % attrSize != 0 { throw TraceError.bad(name, 32, "attrs size \(attrLen) is not a multiple of the entry size \(attrSize)") }
            let ab = try bytes(at: attrOff, count: attrLen, what: "attrs")
            var ac = Cursor(ab, base: attrOff, file: name, bigEndian: false)
            for _ in 0..<Int(attrLen / attrSize) {
                let start = ac.pos
                var attr = try parseAttr(&ac)
                ac.pos = start + Int(attrSize) - 16
                let idOff = try ac.u64("ids offset"), idLen = try ac.u64("ids size")
                if idLen > 0 {
                    if idLen % 8 != 0 || idLen > 8 << 20 { throw TraceError.bad(name, ac.offset - 8, "attr ids size \(idLen) is implausible") }
                    var ic = Cursor(try bytes(at: idOff, count: idLen, what: "attr ids"), base: idOff, file: name, bigEndian: false)
                    for _ in 0..<Int(idLen / 8) { attr.ids.append(try ic.u64("attr id")) }
                }
                addAttr(attr)
                ac.pos = start + Int(attrSize)
            }
            // Feature sections follow the data section: one (offset, size) per set bit.
            if dataOff > file.size || dataLen > file.size - dataOff {
                throw TraceError.bad(name, 40, "data section (\(dataLen) bytes at \(dataOff)) runs past the end of the file")
            }
            var fOff = dataOff + dataLen
            for bit in 0..<256 where features[bit / 64] & (1 << UInt64(bit % 64)) != 0 {
                var fc = Cursor(try bytes(at: fOff, count: 16, what: "feature \(bit) section"), base: fOff, file: name, bigEndian: false)
                let o = try fc.u64("feature offset"), l = try fc.u64("feature size")
                fOff += 16
                try readFeature(bit, offset: o, size: l, ctx)
            }
            try readRecords(from: dataOff, to: dataOff + dataLen, into: &sink, ctx)
        }
        if let z = zstd, z.count > 0 {
            throw TraceError.bad(name, file.size, "the last COMPRESSED record ends inside a record (\(z.count) bytes left)")
        }
        flush(upTo: UInt64.max, into: &sink, ctx)
        if let t = tracing, !t.kallsyms.isEmpty, kallsyms == nil { kallsyms = t.kallsyms }
        if samplesWithoutFormat > 0 {
            ctx.facts.append(("samples without a known format", String(samplesWithoutFormat)))
        }
        ctx.facts.append(("mmap records", String(mappings.count)))
    }

    func parseAttr(_ c: inout Cursor) throws -> Attr {
        let type = try c.u32("attr type")
        let size = try c.u32("attr size")
        if size < 64 { throw TraceError.bad(name, c.offset - 4, "perf_event_attr size \(size) is too small") }
        let config = try c.u64("attr config")
        _ = try c.u64("sample period")
        let st = try c.u64("sample type")
        _ = try c.u64("read format")
        let flags = try c.u64("attr flags")
        return Attr(type: type, config: config, sampleType: st, sampleIdAll: flags & (1 << 18) != 0, ids: [])
    }

    mutating func addAttr(_ a: Attr) {
        for id in a.ids { attrByID.set(id, attrs.count) }
        attrs.append(a)
    }

    mutating func readFeature(_ bit: Int, offset: UInt64, size: UInt64, _ ctx: TraceContext) throws {
        switch bit {
        case 1:  // HEADER_TRACING_DATA
            try readTracingData(at: offset, ctx)
        case 4:  // OSRELEASE
            var c = Cursor(try bytes(at: offset, count: size, what: "osrelease"), base: offset, file: name, bigEndian: false)
            let l = Int(try c.u32("osrelease length"))
            let s = try c.take(l, "osrelease")
            ctx.kernelRelease = String(decoding: s.prefix { $0 != 0 }, as: UTF8.self)
        case 7:  // NRCPUS
            var c = Cursor(try bytes(at: offset, count: size, what: "nrcpus"), base: offset, file: name, bigEndian: false)
            _ = try c.u32("cpus online")
            let avail = Int(try c.u32("cpus available"))
            if avail < 65536 { ctx.cpus = max(ctx.cpus, avail) }
        case 27:  // COMPRESSED
            var c = Cursor(try bytes(at: offset, count: size, what: "compressed feature"), base: offset, file: name, bigEndian: false)
            _ = try c.u32("version")
            let type = try c.u32("compression type")
            if type != 1 { throw TraceError.bad(name, offset, "perf.data compression type \(type) is not zstd") }
            ctx.facts.append(("records", "zstd-compressed"))
        default:
            break
        }
    }

    mutating func readTracingData(at offset: UInt64, _ ctx: TraceContext) throws {
        var t = TraceDatReader(file: file)
        var c = Cursor(try bytes(at: offset, count: min(64, file.size - offset), what: "tracing data"), base: offset, file: name, bigEndian: false)
        let magic = try c.take(10, "tracing data magic")
        if Array(magic) != [0x17, 0x08, 0x44] + Array("tracing".utf8) { throw TraceError.bad(name, offset, "tracing data has a bad magic") }
        let v = try c.cString("tracing data version", max: 8)
        let endian = try c.u8("endianness")
        t.bigEndian = endian == 1
        t.decoder.bigEndian = t.bigEndian
        t.longSize = Int(try c.u8("long size"))
        t.decoder.longSize = t.longSize
        var cc = Cursor(c.bytes, base: offset, file: name, bigEndian: t.bigEndian)
        cc.pos = c.pos
        t.pageSize = Int(try cc.u32("page size"))
        let hasCmdlines = (Double(v) ?? 0) >= 0.6
        _ = try t.readTracingBlock(from: offset + UInt64(cc.pos), ctx, cmdlines: hasCmdlines)
        tracing = t
        decoder = t.decoder
    }

    // MARK: records

    mutating func readRecords<S: EventSink>(from start: UInt64, to end: UInt64, into sink: inout S, _ ctx: TraceContext) throws {
        var off = start
        // A window of the file, [blockStart, blockStart + blockLen): the whole file when it is mapped (the
        // records are read in place), else a buffer refilled when a record does not fit.
        let blockSize = 1 << 20
        let mapping = file.readMapping.flatMap { end <= UInt64($0.count) ? $0 : nil }
        var view: UnsafeRawBufferPointer
        var blockStart: UInt64 = 0
        var blockLen = 0
        if let m = mapping {
            view = m.bytes
            blockLen = m.count
        } else {
            if block == nil { block = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize, alignment: 16) }
            view = UnsafeRawBufferPointer(block!)
        }
        defer { block?.deallocate(); block = nil }
        var count = 0
        func fill(_ at: UInt64, _ want: Int) throws {
            let n = Int(min(UInt64(want), end - at))
            if n > UInt64(file.size) || at > file.size - UInt64(n) {
                throw TraceError.bad(name, at, "perf records of \(n) bytes runs past the end of the file (\(file.size) bytes)")
            }
            if block == nil || block!.count < n {
                block?.deallocate()
                block = UnsafeMutableRawBufferPointer.allocate(byteCount: max(n, blockSize), alignment: 16)
            }
            try file.pread(UnsafeMutableRawBufferPointer(rebasing: block![0..<n]), at: at, what: "perf records")
            view = UnsafeRawBufferPointer(block!)
            blockStart = at
            blockLen = n
        }
        try withExtendedLifetime(mapping) {
            while off + 8 <= end {
                if off < blockStart || off + 8 > blockStart + UInt64(blockLen) { try fill(off, blockSize) }
                let hp = Int(off - blockStart)
                let type = view.loadUnaligned(fromByteOffset: hp, as: UInt32.self)
                let size = Int(view.loadUnaligned(fromByteOffset: hp + 6, as: UInt16.self))
                if size < 8 { throw TraceError.bad(name, off, "perf record of type \(type) has size \(size) < 8") }
                if off + UInt64(size) > end { throw TraceError.bad(name, off, "perf record of \(size) bytes runs past the data section") }
                if off + UInt64(size) > blockStart + UInt64(blockLen) { try fill(off, max(blockSize, size)) }
                let rs = Int(off - blockStart)
                var extra: UInt64 = 0
                try handleRecord(type: type, UnsafeRawBufferPointer(rebasing: view[rs..<(rs + size)]), at: off, extra: &extra, into: &sink, ctx)
                off += UInt64(size) + extra
                count += 1
                if count & 0x3FFF == 0, let p = progress { p(off, file.size) }
            }
        }
    }

    @inline(__always)
    func u64(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt64 { p.loadUnaligned(fromByteOffset: i, as: UInt64.self) }
    @inline(__always)
    func u32(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt32 { p.loadUnaligned(fromByteOffset: i, as: UInt32.self) }

    mutating func handleRecord<S: EventSink>(type: UInt32, _ r: UnsafeRawBufferPointer, at off: UInt64, extra: inout UInt64,
                                             into sink: inout S, _ ctx: TraceContext) throws {
        switch type {
        case 9:  // SAMPLE
            try handleSample(r, at: off, into: &sink, ctx)
        case 3:  // COMM: pid, tid, comm[], sample_id
            if r.count >= 17 {
                let tid = Int32(bitPattern: u32(r, 12))
                var e = 16
                while e < r.count && r[e] != 0 { e += 1 }
                let c = ctx.strings.intern(UnsafeRawBufferPointer(rebasing: r[16..<e]))
                taskOps.append((sampleIDTime(r) ?? 0, seq, tid, c, 0))
                seq += 1
            }
        case 10:  // MMAP2
            if r.count >= 72 {
                var e = 72
                while e < r.count && r[e] != 0 { e += 1 }
                mappings.append(PerfMapping(pid: Int32(bitPattern: u32(r, 8)), start: u64(r, 16), length: u64(r, 24),
                                            pgoff: u64(r, 32), major: u32(r, 40), minor: u32(r, 44), ino: u64(r, 48),
                                            filename: String(decoding: r[72..<e], as: UTF8.self)))
            }
        case 1:  // MMAP
            if r.count >= 41 {
                var e = 40
                while e < r.count && r[e] != 0 { e += 1 }
                mappings.append(PerfMapping(pid: Int32(bitPattern: u32(r, 8)), start: u64(r, 16), length: u64(r, 24),
                                            pgoff: u64(r, 32), major: 0, minor: 0, ino: 0,
                                            filename: String(decoding: r[40..<e], as: UTF8.self)))
            }
        case 7:  // FORK: pid, ppid, tid, ptid, time — the child inherits the parent's comm.
            if r.count >= 32 {
                let tid = Int32(bitPattern: u32(r, 16)), ptid = Int32(bitPattern: u32(r, 20))
                taskOps.append((u64(r, 24), seq, tid, 0, ptid))
                seq += 1
            }
        case 2:  // LOST: id, lost
            if r.count >= 24 { ctx.lost.append(LostEvents(cpu: -1, timestamp: maxTS, count: u64(r, 16))) }
        case 13:  // LOST_SAMPLES
            if r.count >= 16 { ctx.lost.append(LostEvents(cpu: -1, timestamp: maxTS, count: u64(r, 8))) }
        case 68:  // FINISHED_ROUND
            flush(upTo: nextFlush, into: &sink, ctx)
            nextFlush = maxTS
        case 64:  // HEADER_ATTR (pipe mode): attr then ids
            var c = Cursor(Array(r), base: off, file: name, bigEndian: false)
            c.pos = 8
            let start = c.pos
            var a = try parseAttr(&c)
            let asize = Int(u32(r, 12))
            c.pos = start + asize
            while c.remaining >= 8 { a.ids.append(try c.u64("attr id")) }
            addAttr(a)
        case 66:  // HEADER_TRACING_DATA (pipe mode): size, then the data after the record
            if r.count < 12 { throw TraceError.bad(name, off, "tracing data record too short") }
            let size = UInt64(u32(r, 8))
            let dataOff = off + UInt64(r.count)
            if dataOff + size > file.size { throw TraceError.bad(name, off, "tracing data of \(size) bytes runs past the end of the file") }
            try readTracingData(at: dataOff, ctx)
            extra = (size + 7) & ~7
        case 80:  // HEADER_FEATURE (pipe mode): feature id then its body
            if r.count >= 16 {
                let bit = Int(truncatingIfNeeded: min(u64(r, 8), 1024))
                if bit == 4 && r.count >= 20 {
                    let l = Int(u32(r, 16))
                    if 20 + l <= r.count {
                        ctx.kernelRelease = String(decoding: r[20..<(20 + l)].prefix { $0 != 0 }, as: UTF8.self)
                    }
                } else if bit == 7 && r.count >= 24 {
                    ctx.cpus = max(ctx.cpus, Int(u32(r, 20)))
                }
            }
        case 81:  // COMPRESSED: a fragment of one zstd stream of whole records
            if zstd == nil { zstd = ZstdBlockStream() }
            let z = zstd!
            // Records may straddle COMPRESSED records: an unfinished one stays pending for the next.
            let ok = try z.decompress(UnsafeRawBufferPointer(rebasing: r[8...])) { b in
                var p = 0
                while p + 8 <= b.count {
                    let t = b.loadUnaligned(fromByteOffset: p, as: UInt32.self)
                    let s = Int(b.loadUnaligned(fromByteOffset: p + 6, as: UInt16.self))
                    if s < 8 { throw TraceError.bad(name, off, "record of \(s) bytes inside a COMPRESSED record") }
                    if p + s > b.count { break }
                    // The output is handled in place: a nested COMPRESSED record would overwrite it.
                    if t == 81 { throw TraceError.bad(name, off, "COMPRESSED record inside a COMPRESSED record") }
                    var ex: UInt64 = 0
                    try handleRecord(type: t, UnsafeRawBufferPointer(rebasing: b[p..<(p + s)]), at: off, extra: &ex, into: &sink, ctx)
                    p += s
                }
                return p
            }
            if !ok { throw TraceError.bad(name, off + 8, "COMPRESSED record does not decompress (zstd error)") }
        default:
            break
        }
    }

    mutating func handleSample<S: EventSink>(_ r: UnsafeRawBufferPointer, at off: UInt64, into sink: inout S, _ ctx: TraceContext) throws {
        guard !attrs.isEmpty else { throw TraceError.bad(name, off, "sample before any event attribute") }
        var attrIndex = 0
        var p = 8
        let n = r.count
        func need(_ k: Int) throws {
            if p + k > n { throw TraceError.bad(name, off, "sample of \(n) bytes is shorter than its sample_type says") }
        }
        if attrs.count > 1 {
            // The id is first with IDENTIFIER; else at its position after IP/TID/TIME/ADDR.
            let st0 = attrs[0].sampleType
            var id: UInt64? = nil
            if st0 & (1 << 16) != 0 { try need(8); id = u64(r, 8) } else if st0 & (1 << 6) != 0 {
                // After IP, TID, TIME and ADDR, those present.
                let q = 8 + 8 * (st0 & 0xF).nonzeroBitCount
                if q + 8 > n { throw TraceError.bad(name, off, "sample too short for its id") }
                id = u64(r, q)
            }
            if let i = id, let a = attrByID[i] { attrIndex = a }
        }
        let st = attrs[attrIndex].sampleType
        var e = Event()
        e.source = off
        var tid: Int32 = 0
        if st & (1 << 16) != 0 { try need(8); p += 8 }
        if st & (1 << 0) != 0 { try need(8); p += 8 }
        if st & (1 << 1) != 0 { try need(8); tid = Int32(bitPattern: u32(r, p + 4)); p += 8 }
        if st & (1 << 2) != 0 { try need(8); e.timestamp = u64(r, p); p += 8 }
        if st & (1 << 3) != 0 { try need(8); p += 8 }
        if st & (1 << 6) != 0 { try need(8); p += 8 }
        if st & (1 << 9) != 0 { try need(8); p += 8 }
        if st & (1 << 7) != 0 { try need(8); e.cpu = UInt16(truncatingIfNeeded: u32(r, p)); p += 8 }
        if st & (1 << 8) != 0 { try need(8); p += 8 }
        if st & (1 << 4) != 0 {
            throw TraceError.bad(name, off, "samples with PERF_SAMPLE_READ are not supported")
        }
        kernelCount = 0
        if st & (1 << 5) != 0 {
            try need(8)
            let nr64 = u64(r, p)
            p += 8
            let nr = Int(truncatingIfNeeded: min(nr64, UInt64(Int32.max)))
            if nr64 > UInt64((n - p) / 8) { throw TraceError.bad(name, off, "callchain of \(nr) entries is longer than its sample") }
            if kernelIPs.count < nr { kernelIPs = [UInt64](repeating: 0, count: max(nr, 2 * kernelIPs.count)) }
            var nk = 0
            let chain = r.baseAddress! + p
            if nr > 0 { kernelIPs.withUnsafeMutableBufferPointer { kb in
                // Without branches on the context markers (where they fall varies from sample to sample):
                // every entry is stored, and kept when it is a kernel frame.
                let out = kb.baseAddress!
                var kernel = false
                for k in 0..<nr {
                    let ip = chain.loadUnaligned(fromByteOffset: 8 * k, as: UInt64.self)
                    let marker = ip >= UInt64.max - 4095
                    kernel = marker ? ip == UInt64.max - 127 : kernel  // PERF_CONTEXT_KERNEL (-128)
                    out[nk] = ip
                    nk &+= (kernel && !marker) ? 1 : 0
                }
            } }
            kernelCount = nk
            p += 8 * nr
        }
        // A callchain seen before has its stack already; else its frames are symbolised now.
        let cached = kernelIPs.withUnsafeBufferPointer { stackCache.find(UnsafeBufferPointer(rebasing: $0[0..<kernelCount])) }
        if cached == nil {
            frameIDs.removeAll(keepingCapacity: true)
            for k in 0..<kernelCount { frameIDs.append(symbol(kernelIPs[k], ctx)) }
        }
        guard st & (1 << 10) != 0 else {
            nonTracepointSamples += 1
            return
        }
        try need(4)
        let rawSize = Int(u32(r, p))
        p += 4
        if rawSize > n - p { throw TraceError.bad(name, off, "RAW payload of \(rawSize) bytes runs past its sample") }
        guard let dec = decoder else { throw TraceError.bad(name, off, "tracepoint sample but the file has no tracing data (event formats)") }
        let res = dec.decode(UnsafeRawBufferPointer(rebasing: r[p..<(p + rawSize)]), into: &e, ctx)
        if case .unknown = res { samplesWithoutFormat += 1 }
        if case .tooShort = res { throw TraceError.bad(name, off, "RAW payload of \(rawSize) bytes is shorter than the common fields") }
        e.pid = tid
        if let id = cached { e.stack = id } else {
            e.stack = frameIDs.withUnsafeBufferPointer { ctx.stacks.intern($0) }
            let id = e.stack
            kernelIPs.withUnsafeBufferPointer { stackCache.insert(UnsafeBufferPointer(rebasing: $0[0..<kernelCount]), id) }
        }
        ctx.noteCPU(Int(e.cpu))
        if e.timestamp > maxTS { maxTS = e.timestamp }
        let vs = bufferedValues.count
        let nf = Int(e.fieldCount)
        withUnsafeBytes(of: e.values) { bufferedValues.append(contentsOf: UnsafeBufferPointer(rebasing: $0.assumingMemoryBound(to: Int64.self)[0..<nf])) }
        buffered.append(BufferedSample(timestamp: e.timestamp, seq: seq, source: e.source, valuesStart: vs, type: e.type,
                                       stack: e.stack, pid: e.pid, cpu: e.cpu, commonFlags: e.commonFlags,
                                       fieldCount: e.fieldCount))
        seq += 1
    }

    mutating func symbol(_ ip: UInt64, _ ctx: TraceContext) -> SymbolID {
        if let s = symCache[ip] { return s }
        if kallsyms == nil, let t = tracing, !t.kallsyms.isEmpty { kallsyms = t.kallsyms }
        let s = kallsyms?.withName(ip, prefer: .perf) { ctx.symbols.intern($0) } ?? ctx.symbols.intern(hex(ip))
        symCache.set(ip, s)
        return s
    }

    /// Time of a non-sample record from its sample_id trailer (sample_id_all), when the attr has one.
    func sampleIDTime(_ r: UnsafeRawBufferPointer) -> UInt64? {
        guard let a = attrs.first, a.sampleIdAll, a.sampleType & (1 << 2) != 0 else { return nil }
        // Trailer order: TID, TIME, ID, STREAM_ID, CPU, IDENTIFIER; TIME is followed by the rest.
        let after = 8 * (a.sampleType & (1 << 6 | 1 << 9 | 1 << 7 | 1 << 16)).nonzeroBitCount
        let off = r.count - after - 8
        return off >= 8 ? u64(r, off) : nil
    }

    mutating func flush<S: EventSink>(upTo limit: UInt64, into sink: inout S, _ ctx: TraceContext) {
        if buffered.isEmpty && taskOps.isEmpty { return }
        // Samples mostly arrive in order: sort only when they did not.
        var inOrder = true
        buffered.withUnsafeBufferPointer { b in
            var i = 1
            while i < b.count {
                let a = b[i - 1], c = b[i]
                if a.timestamp > c.timestamp || (a.timestamp == c.timestamp && a.seq > c.seq) { inOrder = false; break }
                i += 1
            }
        }
        if !inOrder { buffered.sort { $0.timestamp != $1.timestamp ? $0.timestamp < $1.timestamp : $0.seq < $1.seq } }
        taskOps.sort { $0.ts != $1.ts ? $0.ts < $1.ts : $0.seq < $1.seq }
        var k = 0, t = 0
        var e = Event()
        var lastCount = 0
        while true {
            let sampleNext = k < buffered.count && buffered[k].timestamp <= limit
            let opNext = t < taskOps.count && taskOps[t].ts <= limit
            if !sampleNext && !opNext { break }
            if opNext && (!sampleNext || (taskOps[t].ts, taskOps[t].seq) < (buffered[k].timestamp, buffered[k].seq)) {
                let op = taskOps[t]
                if op.comm != 0 { comms[op.tid] = op.comm } else if comms[op.tid] == nil, let c = comms[op.parent] { comms[op.tid] = c }
                t += 1
            } else {
                let b = buffered[k]
                e.timestamp = b.timestamp
                e.source = b.source
                e.type = b.type
                e.stack = b.stack
                e.pid = b.pid
                e.cpu = b.cpu
                e.commonFlags = b.commonFlags
                e.fieldCount = b.fieldCount
                let nf = Int(b.fieldCount), prev = lastCount
                lastCount = nf
                withUnsafeMutableBytes(of: &e.values) { raw in
                    let d = raw.baseAddress!.assumingMemoryBound(to: Int64.self)
                    bufferedValues.withUnsafeBufferPointer { v in
                        for i in 0..<nf { d[i] = v[b.valuesStart + i] }
                    }
                    // Values past the count are zero, as in a new event.
                    var i = nf
                    while i < prev { d[i] = 0; i += 1 }
                }
                e.comm = comms[e.pid] ?? ctx.strings.intern(":\(e.pid)")
                sink.consume(e, context: ctx)
                k += 1
            }
        }
        if k == buffered.count {
            buffered.removeAll(keepingCapacity: true)
            bufferedValues.removeAll(keepingCapacity: true)
        } else if k > 0 {
            // Keep the values of the samples still waiting, in their new order.
            buffered.removeFirst(k)
            spareValues.removeAll(keepingCapacity: true)
            bufferedValues.withUnsafeBufferPointer { v in
                for i in buffered.indices {
                    let start = buffered[i].valuesStart
                    buffered[i].valuesStart = spareValues.count
                    spareValues.append(contentsOf: UnsafeBufferPointer(rebasing: v[start..<(start + Int(buffered[i].fieldCount))]))
                }
            }
            swap(&bufferedValues, &spareValues)
        }
        taskOps.removeFirst(t)
    }
}

/// A sample waiting in the ordered-events queue; its field values are kept apart, only as many as it has.
struct BufferedSample {
    var timestamp: UInt64
    var seq: UInt64
    var source: UInt64
    var valuesStart: Int
    var type: EventTypeID
    var stack: StackID
    var pid: Int32
    var cpu: UInt16
    var commonFlags: UInt8
    var fieldCount: UInt8
}
