import TraceModel
import XCTest

final class FastMapTests: XCTestCase {
    /// Random inserts, overwrites and removals (backward-shift deletion, growth) against a Dictionary.
    func testAgreesWithDictionaryUnderRandomOperations() {
        var m = FastMap<UInt64, Int>(emptyKey: 0, emptyValue: -1, capacity: 4)
        var d: [UInt64: Int] = [:]
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        for step in 0..<200_000 {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            let k = x % 4096   // small key space: long probe runs, many collisions, key 0 included
            // The operation from bits the key does not take, so that every key meets every operation.
            let op = x >> 40
            if op & 0x3 == 0 {
                m.remove(k); d[k] = nil
            } else if op & 0xC == 0 {
                // probe, then insert at the slot it gave when absent
                let (at, v) = m.probe(k)
                XCTAssertEqual(v, d[k])
                if v == nil { m.insert(k, step, at: at); d[k] = step }
            } else {
                m.set(k, step); d[k] = step
            }
            if step % 997 == 0 {
                XCTAssertEqual(m.count, d.count)
                for q in UInt64(0)..<4096 where m[q] != d[q] { XCTFail("key \(q) at step \(step)"); return }
            }
        }
    }
}
