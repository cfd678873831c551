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
        // `allocate` takes such buffers from malloc, so realloc may grow them.
        guard let r = realloc(p, max(1, capacity * MemoryLayout<T>.stride)) else {
            let m = "pagehint: out of memory growing a buffer to \(capacity) elements\n"
            _ = m.withCString { write(2, $0, strlen($0)) }
            exit(71)
        }
        p = r.bindMemory(to: T.self, capacity: capacity)
        return
    }
    let b = UnsafeMutablePointer<T>.allocate(capacity: capacity)
    b.moveInitialize(from: p, count: count)
    p.deallocate()
    p = b
}
