/// Grows a buffer that a hot loop reads through a raw pointer: moves its first `count` elements into a new
/// buffer of `capacity` elements (at least `count`) and frees the old one. Elements past `count` are left
/// for the caller to initialize.
@inlinable
public func regrow<T>(_ p: inout UnsafeMutablePointer<T>, count: Int, capacity: Int) {
    let b = UnsafeMutablePointer<T>.allocate(capacity: capacity)
    b.moveInitialize(from: p, count: count)
    p.deallocate()
    p = b
}
