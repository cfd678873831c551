/// Measurements of the design alternatives that replace `PG_discarded` (spec §7.2 A4 and A5) and are
/// not per-hook counts: peaks, lifetimes and memory.
public struct AlternativeStats: Sendable {
    /// Most frames volatile or potentially volatile at one time (every one of them could be discarded, so
    /// A4 must have preallocated a side-list node for each).
    public var peakVolatile = 0
    /// Most discarded-but-not-yet-freed frames at one time (side-list nodes in use).
    public var peakDiscardedPending = 0
    /// Longest side list of one block.
    public var peakListLength = 0
    /// Distinct blocks that ever held a side-list node.
    public var blocksUsed = 0
    /// Blocks that held two or more discarded pages at once (Martin's "racy" multi-discard case), and how
    /// often an insertion found the block's list non-empty.
    public var blocksWithOverlap = 0
    public var overlappingInserts: UInt64 = 0
    /// Side-list nodes inserted, and their lifetimes (insertion to the page's final free), in trace ns.
    public var listInserts: UInt64 = 0
    public var listRemovals: UInt64 = 0
    public var lifetimeTotalNs: UInt64 = 0
    public var lifetimeMaxNs: UInt64 = 0

    public init() {}

    /// Preallocated side-list memory, Martin's 16 bytes per page that may be discarded.
    public var nodeBytes: UInt64 { 16 * UInt64(peakVolatile) }
    /// The same with a `{list_head, page *}` node on 64-bit (24 bytes).
    public var nodeBytes64: UInt64 { 24 * UInt64(peakVolatile) }
    /// Mean side-list node lifetime in ns.
    public var meanLifetimeNs: Double { listRemovals > 0 ? Double(lifetimeTotalNs) / Double(listRemovals) : 0 }
}

/// Bookkeeping of A4's side lists and A5's lock (not part of the frame: the alternatives have no bit).
struct AlternativeState {
    /// Block → frames on its side list, in insertion order.
    var sideLists: [Int: [Int32]] = [:]
    /// Frame → (block, insertion time) while on a side list.
    var node: [Int32: (block: Int, at: UInt64)] = [:]
    /// Block → the last write section (time, CPU).
    var lastWrite: [Int: (at: UInt64, cpu: Int)] = [:]
    var blocksEver = Set<Int>()
    var overlapBlocks = Set<Int>()
    /// A5: the global discard lock is held until `lockFreeAt` by `lockCPU`.
    var lockFreeAt: UInt64 = 0
    var lockCPU = -1
}

extension HintingModel {
    /// The A4 block of a frame.
    func seqlockBlock(_ i: Int) -> Int {
        let f = fp[i]
        switch options.seqlockBlock {
        case .node: return 0
        case .zone: let pfn = frames.pfn(i); return pfn < 0x1000 ? 0 : pfn < 0x10_0000 ? 1 : 2
        case .section: return Int(truncatingIfNeeded: frames.pfn(i) >> 15)
        case .hash(let k): return Int(truncatingIfNeeded: (frames.pfn(i) &* 0x9E37_79B9_7F4A_7C15) >> 32) % k
        case .mapping:
            if f.flags.contains(.anon) || f.file == 0 { return -1 }
            let (dev, ino) = files[Int(f.file)]
            return Int(truncatingIfNeeded: (ino &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(dev))
        }
    }

    /// Sets `PG_discarded` — under A4 also a write section on the frame's block and a side-list insert.
    /// Under A5 the replay keeps the flag only to find the operations it would have stopped.
    func markDiscarded(_ i: Int) {
        if fp[i].flags.contains(.discarded) { return }
        fp[i].flags.insert(.discarded)
        guard options.discardTracking == .seqlock else { return }
        let b = seqlockBlock(i)
        rp.pointee.seqlockWrites &+= w
        alt.lastWrite[b] = (now, cpu)
        var list = alt.sideLists[b] ?? []
        if !list.isEmpty {
            alternative.overlappingInserts += 1
            if alt.overlapBlocks.insert(b).inserted { alternative.blocksWithOverlap += 1 }
        }
        list.append(Int32(i))
        alternative.peakListLength = max(alternative.peakListLength, list.count)
        alt.sideLists[b] = list
        alt.node[Int32(i)] = (b, now)
        if alt.blocksEver.insert(b).inserted { alternative.blocksUsed += 1 }
        alternative.listInserts += 1
        alternative.peakDiscardedPending = max(alternative.peakDiscardedPending, alt.node.count)
    }

    /// Clears `PG_discarded` at the frame's final free (A4: the side-list node is freed, a write section).
    @inline(__always)
    func clearDiscarded(_ i: Int) {
        guard fp[i].flags.contains(.discarded) else { return }
        clearDiscardedFlag(i)
    }

    @inline(never)
    func clearDiscardedFlag(_ i: Int) {
        fp[i].flags.remove(.discarded)
        guard options.discardTracking == .seqlock, let n = alt.node.removeValue(forKey: Int32(i)) else { return }
        rp.pointee.seqlockWrites &+= w
        alt.lastWrite[n.block] = (now, cpu)
        if var list = alt.sideLists[n.block], let k = list.firstIndex(of: Int32(i)) {
            list.remove(at: k)
            alt.sideLists[n.block] = list.isEmpty ? nil : list
        }
        let life = now &- n.at
        alternative.listRemovals += 1
        alternative.lifetimeTotalNs &+= life
        alternative.lifetimeMaxNs = max(alternative.lifetimeMaxNs, life)
    }

    /// A test of `PG_discarded` on frame `i` (-1: a frame the model never saw, which cannot be discarded).
    /// `guards` says whether the test stops a removal, an LRU re-add or a pte establishment: under A5,
    /// which has no persistent flag, each such test that would have found the flag set is a correctness
    /// violation. Returns whether the frame is discarded.
    @discardableResult @inline(__always)
    func discardTest(_ i: Int, guards: Bool = true) -> Bool {
        // The page flag (the series' own way): inlined where it is tested.
        if options.discardTracking == .pageFlag {
            rp.pointee.flagTests &+= w
            return i >= 0 && fp[i].flags.contains(.discarded)
        }
        return alternativeDiscardTest(i, guards: guards)
    }

    /// `discardTest` under the alternatives that keep no page flag (A4 side lists, A5 lock).
    @inline(never)
    func alternativeDiscardTest(_ i: Int, guards: Bool) -> Bool {
        let set = i >= 0 && fp[i].flags.contains(.discarded)
        switch options.discardTracking {
        case .pageFlag:   // (`discardTest` handles it inline)
            rp.pointee.flagTests &+= w
        case .seqlock:
            rp.pointee.seqlockReads &+= w
            guard i >= 0 else { return set }
            let b = seqlockBlock(i)
            var attempts = 1
            if let w = alt.lastWrite[b], w.cpu != cpu, w.at <= now, now &- w.at < options.criticalSectionNs {
                rp.pointee.seqlockRetries &+= self.w
                attempts = 2
            }
            if let list = alt.sideLists[b] {
                let visited = set ? (list.firstIndex(of: Int32(i)).map { $0 + 1 } ?? list.count) : list.count
                rp.pointee.sideListVisits &+= UInt64(visited * attempts)
            }
        case .discardLock:
            if set && guards { rp.pointee.correctnessViolations &+= w }
        }
        return set
    }

    /// A5: one acquisition of the global discard lock around a removal function.
    func discardLockAcquire() {
        guard options.discardTracking == .discardLock else { return }
        rp.pointee.discardLockTaken &+= w
        var start = now
        if now < alt.lockFreeAt && cpu != alt.lockCPU {
            rp.pointee.discardLockContended &+= w
            start = alt.lockFreeAt
        }
        alt.lockFreeAt = start &+ options.criticalSectionNs
        alt.lockCPU = cpu
    }

    /// A4: the peak of concurrently volatile frames, sampled after every event.
    @inline(__always)
    func sampleVolatile() {
        let v = censusStore[6] + censusStore[7] + censusStore[8] + censusStore[9] + censusStore[10] + censusStore[11]
        if v > alternative.peakVolatile { alternative.peakVolatile = v }
    }
}
