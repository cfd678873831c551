@testable import HintingModel
import XCTest

/// The page-cache index on hand-built key sets.
final class PageCacheIndexTests: XCTestCase {
    /// `firstCached` finds what looking up each index of the range in turn finds first, over blocks that
    /// exist, blocks that never did and blocks recycled, with ranges that start and end inside blocks.
    func testFirstCachedFindsWhatALookUpPerIndexFinds() {
        var c = PageCacheIndex()
        var rng: UInt64 = 0x2545_F491_4F6C_DD1D
        func next(_ n: UInt64) -> UInt64 {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
            return rng % n
        }
        var bound: [UInt64: Int32] = [:]   // index of file 7 → frame
        for round in 0..<4_000 {
            let x = next(1_000)
            if next(3) == 0, bound[x] != nil {
                c.remove(CacheKey(dev: 1, ino: 7, index: x))
                bound[x] = nil
            } else {
                let f = Int32(round)
                c.set(CacheKey(dev: 1, ino: 7, index: x), f)
                bound[x] = f
            }
            // Another file's pages in the same blocks' numbers: never found for file 7.
            c.set(CacheKey(dev: 1, ino: 8, index: next(1_000)), 1)
            let a = next(1_100), b = a + next(300)
            let got = c.firstCached(dev: 1, ino: 7, from: a, through: b)
            let want = (a...b).first { bound[$0] != nil }.map { ($0, bound[$0]!) }
            XCTAssertEqual(got?.index, want?.0, "range \(a)...\(b)")
            XCTAssertEqual(got?.frame, want?.1, "range \(a)...\(b)")
            XCTAssertEqual(c[CacheKey(dev: 1, ino: 7, index: x)], bound[x])
        }
        XCTAssertNil(c.firstCached(dev: 2, ino: 7, from: 0, through: 5_000), "no page of another device")
    }
}
