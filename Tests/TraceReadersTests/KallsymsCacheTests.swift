@testable import TraceModel
@testable import TraceReaders
import XCTest

/// The per-process cache of parsed kallsyms (keyed by the stored bytes of a trace.dat section).
final class KallsymsCacheTests: XCTestCase {
    func testHitsOnlyOnTheSameBytesAndKeepsTheLastTwo() {
        let cache = KallsymsCache()
        func kallsyms(_ text: String) -> Kallsyms { Kallsyms(text: Array(text.utf8)) }
        let a: [UInt8] = Array("section a".utf8), b: [UInt8] = Array("section b".utf8), c: [UInt8] = Array("section c".utf8)
        let ka = kallsyms("ffffffff81000000 T _stext\nffffffff81001000 T alpha\n")
        let kb = kallsyms("ffffffff81000000 T _stext\nffffffff81002000 T beta\n")
        a.withUnsafeBytes { cache.store($0, ka) }
        b.withUnsafeBytes { cache.store($0, kb) }
        XCTAssertEqual(a.withUnsafeBytes { cache.lookup($0) }?.lookup(0xffffffff81001010)?.symbol.name, "alpha")
        XCTAssertEqual(b.withUnsafeBytes { cache.lookup($0) }?.lookup(0xffffffff81002010)?.symbol.name, "beta")
        // Same length, other bytes; a prefix; nothing stored.
        XCTAssertNil(Array("section x".utf8).withUnsafeBytes { cache.lookup($0) })
        XCTAssertNil(Array("section".utf8).withUnsafeBytes { cache.lookup($0) })
        XCTAssertNil(c.withUnsafeBytes { cache.lookup($0) })
        // A third entry pushes out the oldest.
        c.withUnsafeBytes { cache.store($0, ka) }
        XCTAssertNil(a.withUnsafeBytes { cache.lookup($0) })
        XCTAssertNotNil(b.withUnsafeBytes { cache.lookup($0) })
        XCTAssertNotNil(c.withUnsafeBytes { cache.lookup($0) })
    }
}
