/// Splits a byte stream into lines without copying: each line is handed out as a pointer into the
/// reader's buffer, valid only during the callback. Lines longer than `maxLine` are an error, so a
/// corrupt input cannot make the buffer grow without bound.
struct LineReader {
    let stream: ByteStream
    var buf: UnsafeMutableRawBufferPointer
    var start = 0
    var end = 0
    var eof = false
    let maxLine: Int
    /// 1-based number of the last line handed out.
    var lineNumber = 0

    init(_ stream: ByteStream, bufferSize: Int = 256 << 10, maxLine: Int = 1 << 20) {
        self.stream = stream
        buf = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 64)
        self.maxLine = maxLine
    }

    func free() { buf.deallocate() }

    /// Calls `body` with each line (without its newline). Stops early when `body` returns false.
    mutating func forEachLine(_ body: (UnsafeRawBufferPointer, Int) throws -> Bool) throws {
        while true {
            // Hand out every complete line in the buffer.
            if let base = buf.baseAddress {
                var p = start
                while p < end {
                    let remaining = end - p
                    guard let nl = memchr(base + p, 0x0A, remaining) else { break }
                    let q = base.distance(to: UnsafeMutableRawPointer(nl))
                    var lineEnd = q
                    if lineEnd > p && base.load(fromByteOffset: lineEnd - 1, as: UInt8.self) == 0x0D { lineEnd -= 1 }
                    lineNumber += 1
                    let ok = try body(UnsafeRawBufferPointer(start: base + p, count: lineEnd - p), lineNumber)
                    p = q + 1
                    if !ok { start = p; return }
                }
                start = p
            }
            if eof {
                if start < end {
                    lineNumber += 1
                    _ = try body(UnsafeRawBufferPointer(start: buf.baseAddress! + start, count: end - start), lineNumber)
                    start = end
                }
                return
            }
            // Move the partial line to the front and refill.
            if start > 0 {
                if end > start { memmove(buf.baseAddress!, buf.baseAddress! + start, end - start) }
                end -= start
                start = 0
            }
            if end == buf.count {
                if buf.count >= maxLine {
                    throw TraceError.badLine(stream.name, lineNumber + 1, "line longer than \(maxLine) bytes (not a text trace?)")
                }
                let nb = UnsafeMutableRawBufferPointer.allocate(byteCount: buf.count * 2, alignment: 64)
                nb.copyMemory(from: UnsafeRawBufferPointer(rebasing: buf[0..<end]))
                buf.deallocate()
                buf = nb
            }
            let n = try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: buf[end...]))
            if n == 0 { eof = true } else { end += n }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
