import Foundation
import TraceModel

/// Parsed kallsyms, by the stored bytes of the trace.dat section they came from. Traces captured on one
/// boot of one machine carry the same kallsyms; a command that reads several (import, compare, diff)
/// decompresses and indexes them once. The last two are kept.
final class KallsymsCache: @unchecked Sendable {
    static let shared = KallsymsCache()
    private let lock = NSLock()
    private var entries: [(raw: [UInt8], kallsyms: Kallsyms)] = []

    func lookup(_ raw: UnsafeRawBufferPointer) -> Kallsyms? {
        lock.lock()
        defer { lock.unlock() }
        for e in entries where e.raw.count == raw.count {
            let same = e.raw.withUnsafeBytes { a in raw.count == 0 || memcmp(a.baseAddress!, raw.baseAddress!, raw.count) == 0 }
            if same { return e.kallsyms }
        }
        return nil
    }

    func store(_ raw: UnsafeRawBufferPointer, _ k: Kallsyms) {
        lock.lock()
        defer { lock.unlock() }
        entries.append((Array(raw), k))
        if entries.count > 2 { entries.removeFirst() }
    }
}

/// A bounds-checked little/big-endian cursor over bytes read from a file. Every read that runs past
/// the end throws an error naming the file offset and what was being read.
struct Cursor {
    let bytes: [UInt8]
    var pos = 0
    let base: UInt64
    let file: String
    let bigEndian: Bool

    init(_ bytes: [UInt8], base: UInt64, file: String, bigEndian: Bool) {
        self.bytes = bytes
        self.base = base
        self.file = file
        self.bigEndian = bigEndian
    }

    var remaining: Int { bytes.count - pos }
    var offset: UInt64 { base + UInt64(pos) }

    mutating func need(_ n: Int, _ what: String) throws {
        if n < 0 || n > remaining {
            throw TraceError.bad(file, offset, "truncated: \(what) needs \(n) bytes, \(remaining) left")
        }
    }
    mutating func u8(_ what: String) throws -> UInt8 {
        try need(1, what)
        defer { pos += 1 }
        return bytes[pos]
    }
    mutating func u16(_ what: String) throws -> UInt16 {
        try need(2, what)
        let v = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: pos, as: UInt16.self) }
        pos += 2
        return bigEndian ? v.byteSwapped : v
    }
    mutating func u32(_ what: String) throws -> UInt32 {
        try need(4, what)
        let v = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: pos, as: UInt32.self) }
        pos += 4
        return bigEndian ? v.byteSwapped : v
    }
    mutating func u64(_ what: String) throws -> UInt64 {
        try need(8, what)
        let v = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: pos, as: UInt64.self) }
        pos += 8
        return bigEndian ? v.byteSwapped : v
    }
    /// A 64-bit length that must fit what is left of this buffer.
    mutating func count64(_ what: String) throws -> Int {
        let v = try u64(what)
        if v > UInt64(remaining) { throw TraceError.bad(file, offset - 8, "\(what) \(v) exceeds the \(remaining) bytes left") }
        return Int(v)
    }
    mutating func cString(_ what: String, max: Int = 4096) throws -> String {
        var e = pos
        while e < bytes.count && bytes[e] != 0 {
            e += 1
            if e - pos > max { throw TraceError.bad(file, offset, "\(what): string longer than \(max) bytes") }
        }
        if e >= bytes.count { throw TraceError.bad(file, offset, "truncated: \(what) has no terminating NUL") }
        defer { pos = e + 1 }
        return String(decoding: bytes[pos..<e], as: UTF8.self)
    }
    mutating func take(_ n: Int, _ what: String) throws -> ArraySlice<UInt8> {
        try need(n, what)
        defer { pos += n }
        return bytes[pos..<(pos + n)]
    }
}

/// Reads trace-cmd `trace.dat` files, version 6 and version 7 (with zstd- or zlib-compressed sections
/// and flyrecord chunks; zlib is refused with a clear error), every buffer (instance) in the file.
///
/// Per-CPU ring-buffer pages are decoded lazily, one page (or one compressed chunk) per CPU in memory,
/// and merged by timestamp with ties going to the lower CPU, as `trace-cmd report` prints them.
public struct TraceDatReader {
    let file: FileSource
    var progress: (@Sendable (UInt64, UInt64?) -> Void)? = nil
    var bigEndian = false
    var longSize = 8
    var pageSize = 4096
    var version = 6
    var compression = "none"
    let decoder = RecordDecoder()
    /// One decompression context for every compressed section and chunk (v7 with zstd).
    var zstd: ZstdDecompressor? = nil
    var kallsyms = Kallsyms()
    var streams: [CPUStream] = []
    var name: String { file.name }
    var cpuCount = 0
    var commitSize = 8
    var timeOffset: Int64 = 0
    var cmdlines = PidMap()

    /// `saved_cmdlines`: one `PID COMM` per line.
    mutating func parseCmdlines(_ data: some Collection<UInt8>, _ ctx: TraceContext) {
        for line in data.split(separator: 0x0A) {
            guard let sp = line.firstIndex(of: 0x20) else { continue }
            var pid: Int32 = 0
            var ok = sp > line.startIndex
            for c in line[line.startIndex..<sp] {
                if c < 0x30 || c > 0x39 { ok = false; break }
                pid = pid &* 10 &+ Int32(c - 0x30)
            }
            if ok { cmdlines[pid] = ctx.strings.intern(Array(line[line.index(after: sp)...])) }
        }
    }

    public init(file: FileSource) { self.file = file }

    // MARK: header and metadata

    mutating func readHeader(_ ctx: TraceContext) throws {
        let headLen = Int(min(file.size, 4096))
        var c = Cursor(try file.pread(count: headLen, at: 0, what: "file header"), base: 0, file: name, bigEndian: false)
        let magic = try c.take(10, "magic")
        if Array(magic) != [0x17, 0x08, 0x44] + Array("tracing".utf8) { throw TraceError.bad(name, 0, "not a trace.dat file (bad magic)") }
        let v = try c.cString("version string", max: 8)
        guard let vn = Int(v) else { throw TraceError.bad(name, 10, "version string \"\(v)\" is not a number") }
        version = vn
        if version < 6 || version > 7 { throw TraceError.bad(name, 10, "unsupported trace.dat version \(version) (6 and 7 are read)") }
        let endian = try c.u8("endianness")
        if endian > 1 { throw TraceError.bad(name, c.offset - 1, "endianness byte \(endian) is neither 0 nor 1") }
        bigEndian = endian == 1
        decoder.bigEndian = bigEndian
        longSize = Int(try c.u8("long size"))
        if longSize != 4 && longSize != 8 { throw TraceError.bad(name, c.offset - 1, "long size \(longSize) is neither 4 nor 8") }
        decoder.longSize = longSize
        var cc = Cursor(c.bytes, base: 0, file: name, bigEndian: bigEndian)
        cc.pos = c.pos
        pageSize = Int(try cc.u32("page size"))
        if pageSize < 256 || pageSize > 1 << 20 || pageSize & (pageSize - 1) != 0 {
            throw TraceError.bad(name, cc.offset - 4, "page size \(pageSize) is not a power of two between 256 B and 1 MiB")
        }
        ctx.facts.append(("trace.dat version", String(version)))
        if version >= 7 {
            compression = try cc.cString("compression name", max: 64)
            let cver = try cc.cString("compression version", max: 64)
            ctx.facts.append(("compression", compression == "none" ? "none" : "\(compression) \(cver)"))
            if compression != "none" && compression != "zstd" {
                throw TraceError.bad(name, cc.offset, "trace.dat compressed with \(compression): only zstd and uncompressed files are read (convert with `trace-cmd convert --compression zstd`)")
            }
            if compression == "zstd" { zstd = ZstdDecompressor() }
            let first = try cc.u64("first options offset")
            try readV7Options(at: first, ctx)
        } else {
            try readV6(from: UInt64(cc.pos), ctx)
        }
    }

    /// Reads `count` bytes at `offset` after checking them against the file size.
    func bytes(at offset: UInt64, count: UInt64, what: String) throws -> [UInt8] {
        if count > file.size || offset > file.size - count {
            throw TraceError.bad(name, offset, "\(what) of \(count) bytes runs past the end of the file (\(file.size) bytes)")
        }
        return try file.pread(count: Int(count), at: offset, what: what)
    }

    /// The "tracing data" that trace.dat v6 files start with and perf.data embeds (HEADER_TRACING_DATA):
    /// header_page, header_event, ftrace and event formats, kallsyms, printk formats, saved cmdlines.
    /// Returns the offset after it.
    mutating func readTracingBlock(from start: UInt64, _ ctx: TraceContext, cmdlines hasCmdlines: Bool = true) throws -> UInt64 {
        // v6 metadata is sequential; read it in growing windows.
        var off = start
        func sized(_ label: String, sizeBytes: Int) throws -> [UInt8] {
            var c = Cursor(try bytes(at: off, count: UInt64(sizeBytes), what: label + " size"), base: off, file: name, bigEndian: bigEndian)
            let n = sizeBytes == 8 ? try c.u64(label) : UInt64(try c.u32(label))
            off += UInt64(sizeBytes)
            let data = try bytes(at: off, count: n, what: label)
            off += n
            return data
        }
        func literal(_ s: String) throws {
            let want = Array(s.utf8) + [0]
            let got = try bytes(at: off, count: UInt64(want.count), what: "\"\(s)\"")
            if got != want { throw TraceError.bad(name, off, "expected \"\(s)\"") }
            off += UInt64(want.count)
        }
        try literal("header_page")
        let hp = try sized("header_page", sizeBytes: 8)
        commitSize = headerPageCommitSize(String(decoding: hp, as: UTF8.self)) ?? longSize
        try literal("header_event")
        _ = try sized("header_event", sizeBytes: 8)
        // ftrace formats
        var c = Cursor(try bytes(at: off, count: 4, what: "ftrace format count"), base: off, file: name, bigEndian: bigEndian)
        let nftrace = try c.u32("ftrace format count")
        off += 4
        if nftrace > 10_000 { throw TraceError.bad(name, off - 4, "ftrace format count \(nftrace) is implausible") }
        for _ in 0..<nftrace {
            let t = try sized("ftrace event format", sizeBytes: 8)
            decoder.registerLazily(t[...], system: "ftrace", ctx)
        }
        c = Cursor(try bytes(at: off, count: 4, what: "event system count"), base: off, file: name, bigEndian: bigEndian)
        let nsys = try c.u32("event system count")
        off += 4
        if nsys > 10_000 { throw TraceError.bad(name, off - 4, "event system count \(nsys) is implausible") }
        for _ in 0..<nsys {
            let sysBytes = try bytes(at: off, count: min(256, file.size - off), what: "system name")
            guard let z = sysBytes.firstIndex(of: 0) else { throw TraceError.bad(name, off, "system name without NUL") }
            let system = String(decoding: sysBytes[0..<z], as: UTF8.self)
            off += UInt64(z + 1)
            c = Cursor(try bytes(at: off, count: 4, what: "event count"), base: off, file: name, bigEndian: bigEndian)
            let nev = try c.u32("event count")
            off += 4
            if nev > 100_000 { throw TraceError.bad(name, off - 4, "event count \(nev) is implausible") }
            for _ in 0..<nev {
                let t = try sized("event format", sizeBytes: 8)
                decoder.registerLazily(t[...], system: system, ctx)
            }
        }
        let ks = try sized("kallsyms", sizeBytes: 4)
        kallsyms = Kallsyms(text: ks)
        _ = try sized("printk formats", sizeBytes: 4)
        if hasCmdlines { parseCmdlines(try sized("saved cmdlines", sizeBytes: 8), ctx) }
        return off
    }

    mutating func readV6(from start: UInt64, _ ctx: TraceContext) throws {
        var off = try readTracingBlock(from: start, ctx)
        var c: Cursor
        c = Cursor(try bytes(at: off, count: 4, what: "cpu count"), base: off, file: name, bigEndian: bigEndian)
        cpuCount = Int(try c.u32("cpu count"))
        off += 4
        if cpuCount > 8192 { throw TraceError.bad(name, off - 4, "cpu count \(cpuCount) is implausible") }
        // Options, then the data kind.
        var label = try bytes(at: off, count: 10, what: "section label")
        var buffers: [(String, UInt64)] = []
        if label == Array("options  ".utf8) + [0] {
            off += 10
            while true {
                c = Cursor(try bytes(at: off, count: 2, what: "option id"), base: off, file: name, bigEndian: bigEndian)
                let id = try c.u16("option id")
                off += 2
                if id == 0 { break }
                c = Cursor(try bytes(at: off, count: 4, what: "option size"), base: off, file: name, bigEndian: bigEndian)
                let sz = UInt64(try c.u32("option size"))
                off += 4
                let data = try bytes(at: off, count: sz, what: "option \(id)")
                try handleOption(id, data, at: off, ctx, buffers: &buffers)
                off += sz
            }
            label = try bytes(at: off, count: 10, what: "section label")
        }
        if label == Array("latency  ".utf8) + [0] {
            throw TraceError.bad(name, off, "latency-format trace.dat (text data) is not supported; record events with flyrecord")
        }
        if label != Array("flyrecord".utf8) + [0] { throw TraceError.bad(name, off, "expected \"flyrecord\" or \"latency\" section") }
        off += 10
        c = Cursor(try bytes(at: off, count: UInt64(cpuCount * 16), what: "flyrecord cpu table"), base: off, file: name, bigEndian: bigEndian)
        for cpu in 0..<cpuCount {
            let o = try c.u64("cpu data offset")
            let s = try c.u64("cpu data size")
            try addStream(cpu: cpu, buffer: "", offset: o, size: s, compressed: false)
        }
        // Instance buffers: offset → per-CPU (offset, size) table in the same layout.
        for (bname, boff0) in buffers {
            // The instance's data starts with its own "flyrecord" label.
            var boff = boff0
            if boff <= file.size - 10, try bytes(at: boff, count: 10, what: "buffer label") == Array("flyrecord".utf8) + [0] { boff += 10 }
            var bc = Cursor(try bytes(at: boff, count: UInt64(cpuCount * 16), what: "buffer \(bname) cpu table"), base: boff, file: name, bigEndian: bigEndian)
            for cpu in 0..<cpuCount {
                let o = try bc.u64("cpu data offset")
                let s = try bc.u64("cpu data size")
                try addStream(cpu: cpu, buffer: bname, offset: o, size: s, compressed: false)
            }
        }
    }

    mutating func handleOption(_ id: UInt16, _ data: [UInt8], at off: UInt64, _ ctx: TraceContext,
                               buffers: inout [(String, UInt64)]) throws {
        var c = Cursor(data, base: off, file: name, bigEndian: bigEndian)
        switch id {
        case 3 where version == 6:  // BUFFER (v6): offset + name
            let o = try c.u64("buffer offset")
            let n = try c.cString("buffer name")
            buffers.append((n, o))
        case 5:  // UNAME
            let u = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
            let parts = u.split(separator: " ")
            if parts.count >= 3 { ctx.kernelRelease = String(parts[2]) }
            ctx.facts.append(("uname", u))
        case 7:  // OFFSET
            let s = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
            timeOffset = Int64(s.trimmed()) ?? 0
        case 8:  // CPUCOUNT
            if data.count >= 4 { cpuCount = max(cpuCount, Int(try c.u32("cpu count"))) }
        case 9:
            ctx.facts.append(("trace-cmd version", String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)))
        case 4:
            ctx.facts.append(("trace clock", String(decoding: data.prefix { $0 != 0 }, as: UTF8.self).trimmed()))
        default: break
        }
    }

    /// The raw body (as stored, compressed or not) of the v7 section at `off`, if it lies within the file.
    func withRawSection<R>(at off: UInt64, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
        guard off <= file.size, file.size - off >= 16 else { return nil }
        var h = Cursor(try bytes(at: off, count: 16, what: "section header"), base: off, file: name, bigEndian: bigEndian)
        _ = try h.u16("section id")
        _ = try h.u16("section flags")
        _ = try h.u32("section string id")
        let size = try h.u64("section size")
        guard size <= file.size - off - 16, size < 1 << 31 else { return nil }
        return try file.withBytes(at: off + 16, count: Int(size), what: "section", body)
    }

    /// The kallsyms of an earlier trace whose kallsyms section was byte for byte the same as the one at
    /// `off` (the traces of one boot of one machine, read by one command).
    func cachedKallsyms(at off: UInt64) throws -> Kallsyms? {
        try withRawSection(at: off) { KallsymsCache.shared.lookup($0) } ?? nil
    }

    func rememberKallsyms(at off: UInt64) throws {
        let k = kallsyms
        _ = try withRawSection(at: off) { KallsymsCache.shared.store($0, k) }
    }

    /// Loads a v7 section (header + optionally compressed body).
    func section(at off: UInt64, expect: UInt16, what: String) throws -> (body: [UInt8], bodyOffset: UInt64) {
        var h = Cursor(try bytes(at: off, count: 16, what: "\(what) section header"), base: off, file: name, bigEndian: bigEndian)
        let id = try h.u16("section id")
        let flags = try h.u16("section flags")
        _ = try h.u32("section string id")
        let size = try h.u64("section size")
        if id != expect { throw TraceError.bad(name, off, "expected \(what) section (id \(expect)), found section id \(id)") }
        if flags & 1 == 0 { return (try bytes(at: off + 16, count: size, what: "\(what) section"), off + 16) }
        if size > file.size || off + 16 > file.size - size {
            throw TraceError.bad(name, off + 16, "\(what) section of \(size) bytes runs past the end of the file (\(file.size) bytes)")
        }
        var c = Cursor(try bytes(at: off + 16, count: min(size, 8), what: "\(what) section"), base: off + 16, file: name, bigEndian: bigEndian)
        let csize = try c.u32("compressed size")
        let usize = try c.u32("uncompressed size")
        if UInt64(csize) + 8 > size { throw TraceError.bad(name, off + 16, "compressed size \(csize) exceeds section size \(size)") }
        if UInt64(usize) > UInt64(csize) * 2000 + (1 << 20) {
            throw TraceError.bad(name, off + 20, "uncompressed size \(usize) is implausible for \(csize) compressed bytes")
        }
        var ok = false
        let z = zstd ?? ZstdDecompressor()
        // The compressed bytes are read where they lie in the file (mapped), not copied first.
        let out = try file.withBytes(at: off + 24, count: Int(csize), what: "\(what) section") { src in
            [UInt8](unsafeUninitializedCapacity: Int(usize)) { dst, initialized in
                let got = z.decompress(src, into: UnsafeMutableRawBufferPointer(dst))
                ok = got == Int(usize)
                if !ok { dst.initialize(repeating: 0) }
                initialized = Int(usize)
            }
        }
        if !ok { throw TraceError.bad(name, off + 24, "\(what) section does not decompress to its declared \(usize) bytes") }
        return (out, off + 16)
    }

    mutating func readV7Options(at first: UInt64, _ ctx: TraceContext) throws {
        var next = first
        var seen = Set<UInt64>()
        var bufferOptions: [([UInt8], UInt64)] = []
        while next != 0 {
            if !seen.insert(next).inserted { throw TraceError.bad(name, next, "options sections form a loop") }
            let (body, boff) = try section(at: next, expect: 0, what: "options")
            var c = Cursor(body, base: boff, file: name, bigEndian: bigEndian)
            next = 0
            while c.remaining > 0 {
                let id = try c.u16("option id")
                let sz = Int(try c.u32("option size"))
                let o = c.offset
                let data = Array(try c.take(sz, "option \(id) data"))
                var dc = Cursor(data, base: o, file: name, bigEndian: bigEndian)
                switch id {
                case 0:
                    next = try dc.u64("next options offset")
                case 3:
                    bufferOptions.append((data, o))
                case 16:
                    let (hb, ho) = try section(at: try dc.u64("header info offset"), expect: 16, what: "header info")
                    var hc = Cursor(hb, base: ho, file: name, bigEndian: bigEndian)
                    if try hc.cString("header_page label") != "header_page" { throw TraceError.bad(name, ho, "expected header_page") }
                    let n = try hc.count64("header_page size")
                    commitSize = headerPageCommitSize(String(decoding: try hc.take(n, "header_page"), as: UTF8.self)) ?? longSize
                case 17:
                    let (fb, fo) = try section(at: try dc.u64("ftrace formats offset"), expect: 17, what: "ftrace formats")
                    var fc = Cursor(fb, base: fo, file: name, bigEndian: bigEndian)
                    let n = try fc.u32("ftrace format count")
                    for _ in 0..<n {
                        let l = try fc.count64("format size")
                        decoder.registerLazily(try fc.take(l, "ftrace format"), system: "ftrace", ctx)
                    }
                case 18:
                    let (eb, eo) = try section(at: try dc.u64("event formats offset"), expect: 18, what: "event formats")
                    var ec = Cursor(eb, base: eo, file: name, bigEndian: bigEndian)
                    let nsys = try ec.u32("system count")
                    for _ in 0..<nsys {
                        let system = try ec.cString("system name")
                        let nev = try ec.u32("event count")
                        for _ in 0..<nev {
                            let l = try ec.count64("format size")
                            decoder.registerLazily(try ec.take(l, "event format"), system: system, ctx)
                        }
                    }
                case 19:
                    let at = try dc.u64("kallsyms offset")
                    if let k = try cachedKallsyms(at: at) {
                        kallsyms = k
                    } else {
                        let (kb, ko) = try section(at: at, expect: 19, what: "kallsyms")
                        var kc = Cursor(kb, base: ko, file: name, bigEndian: bigEndian)
                        let l = Int(try kc.u32("kallsyms size"))
                        kallsyms = Kallsyms(text: try kc.take(l, "kallsyms"))
                        try rememberKallsyms(at: at)
                    }
                case 21:
                    let (cb, co) = try section(at: try dc.u64("cmdlines offset"), expect: 21, what: "saved cmdlines")
                    var cc = Cursor(cb, base: co, file: name, bigEndian: bigEndian)
                    let l = try cc.count64("cmdlines size")
                    parseCmdlines(try cc.take(l, "saved cmdlines"), ctx)
                case 22:
                    throw TraceError.bad(name, o, "latency-format buffer (text data) is not supported; record events with flyrecord")
                default:
                    var dummy: [(String, UInt64)] = []
                    try handleOption(id, data, at: o, ctx, buffers: &dummy)
                }
            }
        }
        for (data, o) in bufferOptions {
            var c = Cursor(data, base: o, file: name, bigEndian: bigEndian)
            let secOff = try c.u64("buffer section offset")
            let bname = try c.cString("buffer name")
            _ = try c.cString("buffer clock")
            let ps = Int(try c.u32("buffer page size"))
            if ps != pageSize { throw TraceError.bad(name, o, "buffer \"\(bname)\" page size \(ps) differs from the file's \(pageSize)") }
            let ncpu = try c.u32("buffer cpu count")
            if ncpu > 8192 { throw TraceError.bad(name, o, "buffer cpu count \(ncpu) is implausible") }
            // The section header says whether the data is compressed.
            var h = Cursor(try bytes(at: secOff, count: 16, what: "flyrecord section header"), base: secOff, file: name, bigEndian: bigEndian)
            _ = try h.u16("section id")
            let flags = try h.u16("section flags")
            for _ in 0..<ncpu {
                let cpu = Int(try c.u32("cpu id"))
                let off = try c.u64("cpu data offset")
                let size = try c.u64("cpu data size")
                try addStream(cpu: cpu, buffer: bname, offset: off, size: size, compressed: flags & 1 != 0)
            }
        }
        if !bufferOptions.isEmpty { ctx.facts.append(("buffers", String(bufferOptions.count))) }
    }

    mutating func addStream(cpu: Int, buffer: String, offset: UInt64, size: UInt64, compressed: Bool) throws {
        if size == 0 { return }
        if size > file.size || offset > file.size - size {
            throw TraceError.bad(name, offset, "cpu \(cpu) data (\(size) bytes) runs past the end of the file")
        }
        if cpu > 8191 { throw TraceError.bad(name, offset, "cpu id \(cpu) is implausible") }
        if compressed && zstd == nil { zstd = ZstdDecompressor() }
        streams.append(CPUStream(cpu: cpu, buffer: buffer, offset: offset, size: size, compressed: compressed,
                                 pageSize: pageSize, commitSize: commitSize, bigEndian: bigEndian, zstd: zstd))
    }

    // MARK: events

    public mutating func read<S: EventSink>(into sink: inout S, context ctx: TraceContext) throws {
        try readHeader(ctx)
        ctx.format = "trace.dat-v\(version)"
        if decoder.isEmpty { throw TraceError.bad(name, 0, "no event formats in the file") }
        if cpuCount > ctx.cpus { ctx.cpus = cpuCount }
        var symCache: [UInt64: SymbolID] = [:]
        var stackCache = RawStackCache()
        let idleComm = ctx.strings.intern("<idle>")
        let unknownComm = ctx.strings.intern("<...>")
        var frameIDs: [SymbolID] = []
        var lastPid: Int32 = 0
        var lastComm: StringID = 0
        for i in streams.indices { try streams[i].advance(file, decoder, ctx) }
        var lastProgress: UInt64 = 0
        var n: UInt64 = 0
        while true {
            // Earliest head; ties to the earlier stream (lower CPU, then buffer order).
            var best = -1
            var bestTS = UInt64.max
            for i in streams.indices where streams[i].hasEvent {
                let t = streams[i].event.pointee.timestamp
                if best < 0 || t < bestTS { best = i; bestTS = t }
            }
            if best < 0 { break }
            // The event is completed where it lies and handed to the sink from there.
            let ep = streams[best].event
            if streams[best].pendingStack {
                if let id = streams[best].stackFrames.withUnsafeBufferPointer({ stackCache.find($0) }) {
                    ep.pointee.stack = id
                } else {
                    frameIDs.removeAll(keepingCapacity: true)
                    for a in streams[best].stackFrames {
                        if let s = symCache[a] { frameIDs.append(s); continue }
                        let s = kallsyms.withName(a) { ctx.symbols.intern($0) } ?? ctx.symbols.intern(hex(a))
                        symCache[a] = s
                        frameIDs.append(s)
                    }
                    let id = frameIDs.withUnsafeBufferPointer { ctx.stacks.intern($0) }
                    streams[best].stackFrames.withUnsafeBufferPointer { stackCache.insert($0, id) }
                    ep.pointee.stack = id
                }
            }
            let pid = ep.pointee.pid
            if pid == 0 { ep.pointee.comm = idleComm } else if pid == lastPid { ep.pointee.comm = lastComm } else {
                let c = cmdlines[pid] ?? unknownComm
                ep.pointee.comm = c
                lastPid = pid
                lastComm = c
            }
            if timeOffset != 0 { ep.pointee.timestamp = UInt64(Int64(bitPattern: ep.pointee.timestamp) &+ timeOffset) }
            sink.consume(ep.pointee, context: ctx)
            try streams[best].advance(file, decoder, ctx)
            n += 1
            if n & 0x3FFF == 0, let p = progress {
                var done: UInt64 = 0
                for s in streams { done += s.consumedBytes }
                if done - lastProgress > 1 << 20 { p(done, file.size); lastProgress = done }
            }
        }
        for s in streams {
            ctx.noteCPU(s.cpu)
            for l in s.lost { ctx.lost.append(l) }
        }
        if !decoder.unknownIDs.isEmpty {
            ctx.facts.append(("unknown event ids", decoder.unknownIDs.keys.sorted().map(String.init).joined(separator: ",")))
        }
    }
}

func hex(_ a: UInt64) -> String { "0x" + String(a, radix: 16) }

/// Storage for two events, kept at one address for the life of a `CPUStream`.
final class EventSlots {
    let base: UnsafeMutablePointer<Event>
    init() {
        base = UnsafeMutablePointer<Event>.allocate(capacity: 2)
        base.initialize(repeating: Event(), count: 2)
    }
    deinit {
        base.deinitialize(count: 2)
        base.deallocate()
    }
}

/// One CPU's ring-buffer data: pages, possibly inside zstd chunks, decoded one record at a time.
struct CPUStream {
    let cpu: Int
    let buffer: String
    let offset: UInt64
    let size: UInt64
    let compressed: Bool
    let pageSize: Int
    let commitSize: Int
    let bigEndian: Bool
    let zstd: ZstdDecompressor?

    // Current data window (one page for raw data, one chunk for compressed data).
    var window: [UInt8] = []
    var windowPos = 0            // start of the current page in the window
    var fileCursor: UInt64 = 0   // next byte of this CPU's data in the file (relative)
    var chunksLeft: Int = -1
    var pageEnd = 0              // end of committed data in the current page (window index)
    var pos = 0                  // next record (window index)
    var ts: UInt64 = 0
    var pageOffsetInFile: UInt64 = 0
    var consumedBytes: UInt64 = 0

    /// Two event slots: a decoded event waits in one for a kernel_stack record after it, while the
    /// other, the event handed out, is read in place. Events are never copied between them.
    let slots = EventSlots()
    /// Slot of the event handed out (valid when `hasEvent`), and of the held one.
    var outSlot = 0
    var heldSlot = 1
    var hasHeld = false
    var hasEvent = false
    var event: UnsafeMutablePointer<Event> { slots.base + outSlot }
    var pendingStack = false
    var stackFrames: [UInt64] = []
    var lost: [LostEvents] = []
    // Whether the held event (decoded, waiting for a possible kernel_stack record after it) got its stack.
    var holdStack = false

    init(cpu: Int, buffer: String, offset: UInt64, size: UInt64, compressed: Bool, pageSize: Int, commitSize: Int, bigEndian: Bool,
         zstd: ZstdDecompressor?) {
        self.zstd = zstd
        self.cpu = cpu
        self.buffer = buffer
        self.offset = offset
        self.size = size
        self.compressed = compressed
        self.pageSize = pageSize
        self.commitSize = commitSize
        self.bigEndian = bigEndian
    }

    @inline(__always) func u32(_ i: Int) -> UInt32 {
        let v = window.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i, as: UInt32.self) }
        return bigEndian ? v.byteSwapped : v
    }
    @inline(__always) func u64(_ i: Int) -> UInt64 {
        let v = window.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i, as: UInt64.self) }
        return bigEndian ? v.byteSwapped : v
    }

    /// Loads the next page into the window; returns false at the end of this CPU's data.
    mutating func nextPage(_ file: FileSource) throws -> Bool {
        let name = file.name
        if compressed {
            if windowPos + pageSize < window.count && !window.isEmpty {
                windowPos += pageSize
            } else {
                if chunksLeft < 0 {
                    let h = try file.pread(count: 4, at: offset, what: "chunk count")
                    var c = Cursor(h, base: offset, file: name, bigEndian: bigEndian)
                    chunksLeft = Int(try c.u32("chunk count"))
                    fileCursor = 4
                }
                if chunksLeft == 0 { return false }
                // The recorded size leaves out the 4-byte chunk count.
                let limit = size + 4
                if fileCursor + 8 > limit || offset + fileCursor + 8 > file.size { throw TraceError.bad(name, offset + fileCursor, "cpu \(cpu) chunk header past the end of its data") }
                var c = Cursor(try file.pread(count: 8, at: offset + fileCursor, what: "chunk header"), base: offset + fileCursor, file: name, bigEndian: bigEndian)
                let csize = UInt64(try c.u32("chunk compressed size"))
                let usize = Int(try c.u32("chunk uncompressed size"))
                if fileCursor + 8 + csize > limit || offset + fileCursor + 8 + csize > file.size {
                    throw TraceError.bad(name, offset + fileCursor, "cpu \(cpu) chunk of \(csize) bytes runs past its data (\(size) bytes)")
                }
                if usize % pageSize != 0 || usize == 0 || UInt64(usize) > csize * 2000 + UInt64(pageSize) * 64 {
                    throw TraceError.bad(name, offset + fileCursor + 4, "cpu \(cpu) chunk uncompressed size \(usize) is not a plausible multiple of the page size")
                }
                let at = offset + fileCursor + 8
                if window.count != usize { window = [UInt8](repeating: 0, count: usize) }
                let z = zstd!
                // Decompressed from where the chunk lies in the file (mapped), not from a copy.
                let got = try file.withBytes(at: at, count: Int(csize), what: "chunk data") { s in
                    window.withUnsafeMutableBytes { d in z.decompress(s, into: d) }
                }
                if got != usize { throw TraceError.bad(name, offset + fileCursor + 8, "cpu \(cpu) chunk does not decompress to its declared \(usize) bytes") }
                pageOffsetInFile = offset + fileCursor
                fileCursor += 8 + csize
                consumedBytes = fileCursor
                chunksLeft -= 1
                windowPos = 0
            }
        } else {
            if fileCursor >= size { return false }
            let n = Int(min(UInt64(pageSize), size - fileCursor))
            if window.count != pageSize { window = [UInt8](repeating: 0, count: pageSize) }
            try window.withUnsafeMutableBytes { try file.pread(UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), at: offset + fileCursor, what: "ring-buffer page") }
            if n < pageSize { for i in n..<pageSize { window[i] = 0 } }
            pageOffsetInFile = offset + fileCursor
            fileCursor += UInt64(n)
            consumedBytes = fileCursor
            windowPos = 0
        }
        // Page header: u64 timestamp, long commit (flags in the top bits).
        let hdr = 8 + commitSize
        ts = u64(windowPos)
        let commit = commitSize == 8 ? u64(windowPos + 8) : UInt64(u32(windowPos + 8))
        let dataSize = Int(commit & ((1 << 27) - 1))
        if dataSize > pageSize - hdr {
            throw TraceError.bad(name, pageOffsetInFile, "cpu \(cpu) ring-buffer page commit size \(dataSize) exceeds the page (\(pageSize - hdr) bytes)")
        }
        pos = windowPos + hdr
        pageEnd = pos + dataSize
        if commit & (1 << 31) != 0 {
            var count: UInt64 = 0
            if commit & (1 << 30) != 0 && pageEnd + commitSize <= windowPos + pageSize {
                count = commitSize == 8 ? u64(pageEnd) : UInt64(u32(pageEnd))
            }
            lost.append(LostEvents(cpu: cpu, timestamp: ts, count: count))
        }
        return true
    }

    /// Moves to the next event (with its stack, if a kernel_stack record follows it).
    mutating func advance(_ file: FileSource, _ decoder: RecordDecoder, _ ctx: TraceContext) throws {
        hasEvent = false
        pendingStack = false
        while true {
            guard let rec = try nextRecord(file) else {
                if hasHeld {
                    outSlot = heldSlot
                    hasHeld = false
                    pendingStack = holdStack
                    holdStack = false
                    hasEvent = true
                }
                return
            }
            // The slot not holding the held event (the one handed out last has been consumed).
            let free = hasHeld ? 1 - heldSlot : heldSlot
            let e = slots.base + free
            e.initialize(to: Event())
            e.pointee.timestamp = rec.ts
            e.pointee.cpu = UInt16(truncatingIfNeeded: cpu)
            e.pointee.source = rec.fileOffset
            let r = window.withUnsafeBytes { w in
                decoder.decode(UnsafeRawBufferPointer(rebasing: w[rec.start..<rec.end]), into: &e.pointee, ctx)
            }
            switch r {
            case .stack:
                if hasHeld && !holdStack {
                    // Copied, not shared: the decoder reuses its buffer for the next stack.
                    stackFrames.removeAll(keepingCapacity: true)
                    decoder.withFrames { stackFrames.append(contentsOf: $0) }
                    holdStack = true
                }
                continue
            case .tooShort:
                throw TraceError.bad(file.name, rec.fileOffset, "cpu \(cpu) record of \(rec.end - rec.start) bytes is shorter than the common fields")
            case .event, .unknown:
                e.pointee.comm = 0
                if hasHeld {
                    outSlot = heldSlot
                    pendingStack = holdStack
                    heldSlot = free
                    holdStack = false
                    hasEvent = true
                    return
                }
                heldSlot = free
                hasHeld = true
                holdStack = false
            }
        }
    }

    struct Rec { var start: Int; var end: Int; var ts: UInt64; var fileOffset: UInt64 }

    /// The next data record of this CPU, handling time extends, absolute timestamps and padding.
    mutating func nextRecord(_ file: FileSource) throws -> Rec? {
        while true {
            if window.isEmpty || pos >= pageEnd {
                if !(try nextPage(file)) { return nil }
                continue
            }
            if pos + 4 > pageEnd { pos = pageEnd; continue }
            let hdr = u32(pos)
            let typeLen = Int(hdr & 31)
            let delta = UInt64(hdr >> 5)
            let here = pos
            let fileOff = pageOffsetInFile + UInt64(here - windowPos)
            switch typeLen {
            case 29:  // padding
                if delta == 0 { pos = pageEnd; continue }
                guard pos + 8 <= pageEnd else { pos = pageEnd; continue }
                let len = Int(u32(pos + 4))
                if len < 4 || pos + 4 + len > pageEnd {
                    throw TraceError.bad(file.name, fileOff, "cpu \(cpu) padding record length \(len) runs past the page")
                }
                ts &+= delta
                pos += 4 + len
            case 30:  // time extend
                guard pos + 8 <= pageEnd else { throw TraceError.bad(file.name, fileOff, "cpu \(cpu) truncated time-extend record") }
                ts &+= (UInt64(u32(pos + 4)) << 27) &+ delta
                pos += 8
            case 31:  // absolute timestamp (top 5 bits kept from the running clock)
                guard pos + 8 <= pageEnd else { throw TraceError.bad(file.name, fileOff, "cpu \(cpu) truncated time-stamp record") }
                let abs = (UInt64(u32(pos + 4)) << 27) | delta
                ts = abs | (ts & (0xF8 << 56))
                pos += 8
            case 0:
                guard pos + 8 <= pageEnd else { throw TraceError.bad(file.name, fileOff, "cpu \(cpu) truncated record header") }
                let len = Int(u32(pos + 4))
                if len < 4 || pos + 4 + len > pageEnd {
                    throw TraceError.bad(file.name, fileOff, "cpu \(cpu) record length \(len) runs past the page")
                }
                ts &+= delta
                let start = pos + 8
                pos += 4 + ((len + 3) & ~3)
                if pos > pageEnd { pos = pageEnd }
                return Rec(start: start, end: start + len - 4, ts: ts, fileOffset: fileOff)
            default:
                let len = typeLen * 4
                if pos + 4 + len > pageEnd {
                    throw TraceError.bad(file.name, fileOff, "cpu \(cpu) record of \(len) bytes runs past the page")
                }
                ts &+= delta
                let start = pos + 4
                pos += 4 + len
                return Rec(start: start, end: start + len, ts: ts, fileOffset: fileOff)
            }
        }
    }
}
