#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Grows a buffer that a hot loop reads through a raw pointer: moves its first `count` elements into a new
/// buffer of `capacity` elements (at least `count`) and frees the old one. Elements past `count` are left
/// for the caller to initialize. Plain data is grown with `realloc`, which moves a large buffer by
/// remapping its pages rather than copying them.
@inlinable
public func regrow<T>(_ p: inout UnsafeMutablePointer<T>, count: Int, capacity: Int) {
    if _isPOD(T.self) && MemoryLayout<T>.alignment <= 16 {
        // At this alignment `allocate` and `deallocate` are the C allocator's malloc and free, so realloc
        // may grow the buffer.
        guard let r = realloc(p, max(1, capacity * MemoryLayout<T>.stride)) else {
            outOfMemory("a buffer of \(capacity) elements")
        }
        p = r.bindMemory(to: T.self, capacity: capacity)
        return
    }
    let b = UnsafeMutablePointer<T>.allocate(capacity: capacity)
    b.moveInitialize(from: p, count: count)
    p.deallocate()
    p = b
}

/// Ends the program when memory for `what` cannot be had: one line on standard error, exit status 71
/// (EX_OSERR).
@inline(never)
public func outOfMemory(_ what: String) -> Never {
    exitWithLine("out of memory for \(what)", status: 71)
}

/// Ends the program from where no error can be thrown: `pagehint: LINE` on standard error, then `status`.
@inline(never)
public func exitWithLine(_ line: String, status: Int32) -> Never {
    let m = "pagehint: \(line)\n"
    _ = m.withCString { write(2, $0, strlen($0)) }
    exit(status)
}
