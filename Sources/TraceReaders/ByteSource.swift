import CMapGuard
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CZstd

/// A sequential source of bytes: a file, standard input or a decompressor over another source.
public protocol ByteStream: AnyObject {
    /// Reads up to `buffer.count` bytes; returns 0 at end of input.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// The name used in error messages.
    var name: String { get }
    /// Total size when known (for progress), else nil.
    var sizeHint: UInt64? { get }
    /// Bytes of the underlying file consumed so far (for progress).
    var consumed: UInt64 { get }
}

/// A file opened for reading, sequentially or at any offset (pread).
public final class FileSource: ByteStream {
    public let name: String
    let fd: Int32
    public let size: UInt64
    public private(set) var consumed: UInt64 = 0
    public var sizeHint: UInt64? { size > 0 ? size : nil }
    let ownsFD: Bool

    public init(path: String) throws {
        name = path
        if path == "-" {
            fd = 0
            size = 0
            ownsFD = false
            return
        }
        let f = open(path, O_RDONLY)
        if f < 0 {
            throw TraceError(.unreadable, file: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        var st = stat()
        if fstat(f, &st) != 0 {
            close(f)
            throw TraceError(.unreadable, file: path, "cannot stat: \(String(cString: strerror(errno)))")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            close(f)
            throw TraceError(.unreadable, file: path, "is a directory")
        }
        fd = f
        size = (st.st_mode & S_IFMT) == S_IFREG ? UInt64(st.st_size) : 0
        ownsFD = true
    }

    /// Wraps an already open descriptor (used for unlinked temporary files).
    init(fd: Int32, name: String, size: UInt64) {
        self.fd = fd
        self.name = name
        self.size = size
        ownsFD = true
    }

    deinit { if ownsFD { close(fd) } }

    /// True when the file supports pread at arbitrary offsets (a regular file).
    public var isSeekable: Bool { size > 0 || (fd != 0 && lseek(fd, 0, SEEK_CUR) >= 0) }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw TraceError(.unreadable, file: name, offset: consumed, "read failed: \(String(cString: strerror(errno)))")
            }
            consumed += UInt64(n)
            return n
        }
    }

    /// The whole file mapped read-only, or nil when it cannot be (not a regular file, empty, mmap refused).
    func mapped() -> MappedFile? {
        guard size > 0, size < UInt64(Int.max) else { return nil }
        guard let p = mmap(nil, Int(size), PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else { return nil }
        ph_mapguard_install()
        ph_mapguard_add(p, Int(size), name)
        return MappedFile(base: UnsafeRawPointer(p), count: Int(size))
    }

    /// Files up to this size are read through one mapping rather than a `pread` call per page or chunk
    /// (a trace.dat is read in thousands of small pieces); larger ones keep `pread`, so that reading
    /// them does not leave gigabytes mapped.
    static let mapLimit: UInt64 = 512 << 20
    private var mapping: MappedFile? = nil
    private var mapTried = false

    /// The mapping that random reads use, made on the first of them (nil for a file read with `pread`).
    var readMapping: MappedFile? {
        if !mapTried {
            mapTried = true
            if size <= Self.mapLimit { mapping = mapped() }
        }
        return mapping
    }

    /// Hands `body` the `count` bytes at `offset`: in place when the file is mapped, else read into a
    /// temporary buffer. Throws like `pread` when the file is shorter.
    func withBytes<R>(at offset: UInt64, count: Int, what: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        if count >= 0, let m = readMapping, offset <= UInt64(m.count), UInt64(count) <= UInt64(m.count) - offset {
            return try withExtendedLifetime(m) { try body(UnsafeRawBufferPointer(start: m.base + Int(offset), count: count)) }
        }
        let b = try pread(count: count, at: offset, what: what)
        return try b.withUnsafeBytes(body)
    }

    /// Reads exactly `count` bytes at `offset`; throws a bad-data error naming `what` when the file is shorter.
    public func pread(_ buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, what: String) throws {
        if let m = readMapping, offset <= UInt64(m.count), UInt64(buffer.count) <= UInt64(m.count) - offset {
            if buffer.count > 0 { buffer.baseAddress!.copyMemory(from: m.base + Int(offset), byteCount: buffer.count) }
            return
        }
        var done = 0
        while done < buffer.count {
            let n = Glibc.pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw TraceError(.unreadable, file: name, offset: offset, "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 {
                throw TraceError.bad(name, offset + UInt64(done), "truncated: \(what) needs \(buffer.count) bytes, file ends after \(done)")
            }
            done += n
        }
    }

    public func pread(count: Int, at offset: UInt64, what: String) throws -> [UInt8] {
        if count < 0 || (size > 0 && offset + UInt64(count) > size) {
            throw TraceError.bad(name, offset, "truncated: \(what) needs \(count) bytes, file has \(size > offset ? size - offset : 0) left")
        }
        return try [UInt8](unsafeUninitializedCapacity: count) { b, initialized in
            try pread(UnsafeMutableRawBufferPointer(b), at: offset, what: what)
            initialized = count
        }
    }
}

/// Streaming zstd decompression over another byte stream (a `.zst` file, or a zstd frame inside a trace).
public final class ZstdStream: ByteStream {
    let inner: ByteStream
    let dctx: OpaquePointer
    var inBuf: UnsafeMutableRawBufferPointer
    var inPos = 0
    var inLen = 0
    var innerDone = false
    var frameOpen = false
    public var name: String { inner.name }
    public var sizeHint: UInt64? { inner.sizeHint }
    public var consumed: UInt64 { inner.consumed }

    public init(_ inner: ByteStream) {
        self.inner = inner
        dctx = ZSTD_createDCtx()
        inBuf = UnsafeMutableRawBufferPointer.allocate(byteCount: ZSTD_DStreamInSize(), alignment: 16)
    }

    deinit {
        ZSTD_freeDCtx(dctx)
        inBuf.deallocate()
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var out = ZSTD_outBuffer(dst: buffer.baseAddress, size: buffer.count, pos: 0)
        while out.pos == 0 {
            if inPos == inLen && !innerDone {
                inLen = try inner.read(into: inBuf)
                inPos = 0
                if inLen == 0 { innerDone = true }
            }
            if inPos == inLen && innerDone {
                if frameOpen {
                    throw TraceError.bad(name, inner.consumed, "zstd stream ends inside a frame (truncated)")
                }
                return 0
            }
            var input = ZSTD_inBuffer(src: inBuf.baseAddress, size: inLen, pos: inPos)
            let r = ZSTD_decompressStream(dctx, &out, &input)
            if ZSTD_isError(r) != 0 {
                let msg = String(cString: ZSTD_getErrorName(r))
                throw TraceError.bad(name, inner.consumed - UInt64(inLen - inPos), "zstd: \(msg)")
            }
            inPos = input.pos
            frameOpen = r != 0
        }
        return out.pos
    }
}

/// A read-only mapping of a whole file, unmapped when the last reference goes.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeRawPointer
    let count: Int
    init(base: UnsafeRawPointer, count: Int) {
        self.base = base
        self.count = count
    }
    deinit {
        ph_mapguard_remove(base)
        munmap(UnsafeMutableRawPointer(mutating: base), count)
    }
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

/// One-shot zstd decompression of blocks whose decompressed size is known (trace.dat chunks and
/// sections), with one decompression context kept for all of them (a trace.dat has hundreds of chunks).
final class ZstdDecompressor {
    let dctx: OpaquePointer
    init() { dctx = ZSTD_createDCtx() }
    deinit { ZSTD_freeDCtx(dctx) }

    /// The number of bytes written to `dst`, or nil on a zstd error.
    func decompress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) -> Int? {
        let r = ZSTD_decompressDCtx(dctx, dst.baseAddress, dst.count, src.baseAddress, src.count)
        if ZSTD_isError(r) != 0 { return nil }
        return r
    }
}

/// Streaming decompression of blocks whose size is not known in advance (perf.data COMPRESSED records
/// are fragments of one stream of records). Keeps its context and its output buffer between calls.
/// Output is produced a window at a time and handed over while it is still in cache; what the receiver
/// leaves (an unfinished record) stays pending, before the next output.
final class ZstdBlockStream {
    let dctx: OpaquePointer
    private var buffer: UnsafeMutableRawBufferPointer
    /// Bytes of output not consumed yet.
    private(set) var count = 0
    let window = 128 << 10

    init() {
        dctx = ZSTD_createDCtx()
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2 * window, alignment: 16)
    }
    deinit {
        ZSTD_freeDCtx(dctx)
        buffer.deallocate()
    }

    /// Decompresses all of `src`. After each window of output, `body` gets the pending output and
    /// returns how many of its bytes it used. Returns false on a zstd error.
    func decompress(_ src: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Int) rethrows -> Bool {
        var input = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: 0)
        while true {
            if buffer.count - count < window {
                let nb = UnsafeMutableRawBufferPointer.allocate(byteCount: max(2 * buffer.count, count + window), alignment: 16)
                nb.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
                buffer.deallocate()
                buffer = nb
            }
            var output = ZSTD_outBuffer(dst: buffer.baseAddress! + count, size: window, pos: 0)
            let r = ZSTD_decompressStream(dctx, &output, &input)
            if ZSTD_isError(r) != 0 { return false }
            count += output.pos
            let used = try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            precondition(used >= 0 && used <= count)
            if used < count { memmove(buffer.baseAddress!, buffer.baseAddress! + used, count - used) }
            count -= used
            // Done when the input is used up and the decoder had no more output to give (room was left).
            if input.pos >= input.size && output.pos < window { break }
        }
        return true
    }
}

/// Reads a whole stream into memory, refusing more than `limit` bytes. `expected` (the size when known)
/// sizes the buffer so a plain file is read in one pass.
func readAll(_ s: ByteStream, limit: Int, expected: Int = 0) throws -> [UInt8] {
    if expected > 0 && expected <= limit {
        // The expected size: read straight into the result, then make sure nothing follows.
        var filled = 0
        var out = try [UInt8](unsafeUninitializedCapacity: expected) { b, initialized in
            let raw = UnsafeMutableRawBufferPointer(b)
            while filled < expected {
                let r = try s.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[filled..<min(expected, filled + (1 << 20))]))
                if r == 0 { break }
                filled += r
            }
            initialized = filled
        }
        if filled < expected { return out }
        var probe: UInt8 = 0
        if try withUnsafeMutableBytes(of: &probe, { try s.read(into: $0) }) == 0 { return out }
        // Longer than expected (a growing file): read on.
        out.append(probe)
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try s.read(into: $0) }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
            if out.count > limit {
                throw TraceError.bad(s.name, UInt64(out.count), "input larger than \(limit) bytes where a small file was expected")
            }
        }
        return out
    }
    var cap = max(1 << 20, min(expected, limit) + 1)
    var buf = UnsafeMutableRawBufferPointer.allocate(byteCount: cap, alignment: 16)
    defer { buf.deallocate() }
    var n = 0
    while true {
        if n == cap {
            let nb = UnsafeMutableRawBufferPointer.allocate(byteCount: cap * 2, alignment: 16)
            nb.copyMemory(from: UnsafeRawBufferPointer(buf))
            buf.deallocate()
            buf = nb
            cap *= 2
        }
        let r = try s.read(into: UnsafeMutableRawBufferPointer(rebasing: buf[n..<min(cap, n + (1 << 20))]))
        if r == 0 { break }
        n += r
        if n > limit {
            throw TraceError.bad(s.name, UInt64(n), "input larger than \(limit) bytes where a small file was expected")
        }
    }
    return Array(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
}

/// Copies a stream into an unlinked temporary file so formats that need random access (trace.dat,
/// perf.data) can be read from a compressed or piped input.
func spoolToTempFile(_ s: ByteStream) throws -> FileSource {
    var template = Array("/tmp/pagehint-spool-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    if fd < 0 {
        throw TraceError(.unreadable, file: s.name, "cannot create a temporary file: \(String(cString: strerror(errno)))")
    }
    template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
    var total: UInt64 = 0
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buf.deallocate() }
    while true {
        let n = try s.read(into: buf)
        if n == 0 { break }
        var off = 0
        while off < n {
            let w = write(fd, buf.baseAddress! + off, n - off)
            if w < 0 {
                if errno == EINTR { continue }
                close(fd)
                throw TraceError(.unreadable, file: s.name, "cannot write a temporary file: \(String(cString: strerror(errno)))")
            }
            off += w
        }
        total += UInt64(n)
    }
    return FileSource(fd: fd, name: s.name, size: total)
}
