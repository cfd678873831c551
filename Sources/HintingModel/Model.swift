import TraceModel

/// The guest page-hinting model: frame state, the primitives of spec §2, the volatility predicate of
/// §3.3 and the host emulator of §5.1. `Replay` drives it from trace events (§6.B); every primitive
/// charges its costs to the counter row of the hook currently executing.
public final class HintingModel {
    public let options: ReplayOptions
    public var series: Series { options.series }
    public let frames = FrameTable()
    /// The frames (`frames.base`, which never moves): read and written without checks.
    let fp: UnsafeMutablePointer<Frame>
    var cache = PageCacheIndex()
    /// Bytes of the model's tables kept per cached page (the page-cache index's blocks and block map)
    /// and per file (the index's file entries, the file keys and the two file-id tables), and the files.
    public var cacheBytes: (pages: Int, files: Int, fileCount: Int) {
        let c = cache.bytes
        return (c.pages, c.files + files.bytes + fileOf.bytes + inoFile.bytes, files.count - 1)
    }
    /// Inode → the file (id) it was last cached as, on the device it was last cached from, for writeback
    /// events that carry no device.
    var inoFile = FileIdTable()
    /// The files frames were cached from (`Frame.file`), id 0 being (0, 0); the last one looked up.
    var files = FileTable()
    /// (dev, ino) → file id (but (0, 0), always 0).
    var fileOf = FileIdTable()
    /// (0, 0) is file 0 from the start (and inode 0's file, as `learnFile` would make it): no other
    /// (dev, ino) is taken for it before a file is learned.
    var lastFile: (dev: UInt32, ino: UInt64, id: UInt32) = (0, 0, 0)

    struct FileKey: FastHashable {
        var dev: UInt32
        var ino: UInt64
        var fastHash: UInt64 { fastMix((ino &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(dev)) }
    }

    /// The id of file (dev, ino), interned on first use; the inode's device is remembered for writeback
    /// events, which name the inode only.
    @inline(__always)
    func fileID(dev: UInt32, ino: UInt64) -> UInt32 {
        if dev == lastFile.dev && ino == lastFile.ino { return lastFile.id }
        return learnFile(dev: dev, ino: ino)
    }

    /// The id of file (dev, ino) if the model has cached a page of it (nothing is interned).
    @inline(__always)
    func knownFile(dev: UInt32, ino: UInt64) -> UInt32? {
        if dev == lastFile.dev && ino == lastFile.ino { return lastFile.id }
        if dev == 0 && ino == 0 { return 0 }
        let fb = files.base
        return fileOf.probe(FileKey(dev: dev, ino: ino).fastHash) { fb[Int($0)] == (dev, ino) }.id
    }

    /// The file id inode `ino` was last cached as (`learnFile`).
    func lastFileOf(ino: UInt64) -> UInt32? {
        let fb = files.base
        return inoFile.probe(fastMix(ino)) { fb[Int($0)].ino == ino }.id
    }

    /// Remembers that inode `ino` was last cached as file `id`.
    func setLastFile(ino: UInt64, _ id: UInt32) {
        let fb = files.base
        let (at, old) = inoFile.probe(fastMix(ino)) { fb[Int($0)].ino == ino }
        if old != nil { inoFile.replace(at: at, id) } else { inoFile.insert(at: at, id) { fastMix(fb[Int($0)].ino) } }
    }

    @inline(never)
    func learnFile(dev: UInt32, ino: UInt64) -> UInt32 {
        let k = FileKey(dev: dev, ino: ino)
        var id: UInt32
        if dev == 0 && ino == 0 {
            id = 0
        } else {
            let fb = files.base
            let (at, f) = fileOf.probe(k.fastHash) { fb[Int($0)] == (dev, ino) }
            if let f {
                id = f
            } else {
                id = UInt32(files.count)
                files.append(dev, ino)
                let nb = files.base
                fileOf.insert(at: at, id) { FileKey(dev: nb[Int($0)].dev, ino: nb[Int($0)].ino).fastHash }
            }
        }
        setLastFile(ino: ino, id)
        lastFile = (dev, ino, id)
        return id
    }

    /// The cache key of a frame in the page cache.
    @inline(__always)
    func cacheKey(_ i: Int) -> CacheKey {
        let f = files[Int(fp[i].file)]
        return CacheKey(dev: f.dev, ino: f.ino, index: pageIndex(i))
    }

    /// Page indices of 2^32 - 1 and above, by frame index (`Frame.indexLow` is `UInt32.max` then).
    var bigPageIndex = FastMap<UInt64, UInt64>(emptyKey: .max, emptyValue: 0, capacity: 16)

    /// The page index of a frame in the page cache.
    @inline(__always)
    func pageIndex(_ i: Int) -> UInt64 {
        let x = fp[i].indexLow
        return x != UInt32.max ? UInt64(x) : bigPageIndex[UInt64(i)] ?? UInt64(x)
    }

    @inline(__always)
    func setPageIndex(_ i: Int, _ index: UInt64) {
        if fp[i].indexLow == UInt32.max { bigPageIndex.remove(UInt64(i)) }
        if index < UInt64(UInt32.max) {
            fp[i].indexLow = UInt32(index)
        } else {
            fp[i].indexLow = UInt32.max
            bigPageIndex.set(UInt64(i), index)
        }
    }

    /// The cached frame of (ino, index) on the device the inode was last cached from.
    func cached(ino: UInt64, index: UInt64) -> Int32? {
        guard let file = lastFileOf(ino: ino) else { return nil }
        return cache[file: file, index: index]
    }

    /// The weight of the page step being run: 1, or the number of frames of a large folio that hold the
    /// same page state when the replay runs the step once for all of them (folio batching, `Replay.batch`).
    /// Every counter, the census and `hostResident` move by the weight; lists and per-frame structures
    /// do not (the step runs on the folio's head, the state is then copied to the tails).
    var w: UInt64 = 1 { didSet { wi = Int(w) } }
    var wi = 1

    // Counters.
    /// Counter rows, `rowCount` of them, in a buffer grown by doubling; `rp` is the current row
    /// (`rowBase + cur`), refreshed whenever `cur` or the buffer changes.
    var rowBase: UnsafeMutablePointer<HookCounts>
    var rowCapacity = 256
    public private(set) var rowCount = 0
    var rp: UnsafeMutablePointer<HookCounts>
    /// The counter rows (a copy).
    public var rows: [HookCounts] { Array(UnsafeBufferPointer(start: rowBase, count: rowCount)) }
    public internal(set) var keys: [CounterKey] = []
    var rowOf = FastMap<CounterKey, Int>(emptyKey: CounterKey(hook: .host, site: 0, eventType: 0, inferred: false, policy: 0), emptyValue: -1)
    var cur = 0 { didSet { rp = rowBase + cur } }
    var curKey = CounterKey(hook: .host, site: 0, eventType: 0, inferred: false, policy: 0)

    // Guest LRU lists (enum lru_list 0...4) and the host LRU.
    var guestLRU = InlineArray<5, FrameList>(repeating: FrameList())
    var hostLRU = FrameList()
    public internal(set) var hostResident = 0
    public internal(set) var budgetFrames = Int.max
    var rng: UInt64

    /// Frames on the discard list with the time they were parked.
    var discardList: [(frame: Int32, at: UInt64)] = []
    /// Combined-state census: guest raw × 3 + host raw.
    var censusStore = InlineArray<12, Int>(repeating: 0)
    public var census: [Int] { (0..<12).map { censusStore[$0] } }
    /// Census at the start of the replay, for the "transitions add up" invariant.
    var violations: [String] = []
    public internal(set) var violationCount = 0
    public internal(set) var notes: [String: UInt64] = [:]
    var now: UInt64 = 0
    /// Call site, type and stack of the event being replayed (its host row's key).
    var event: (site: UInt32, type: UInt32, stack: UInt32) = (0, 0, 0)
    /// CPU of the event being replayed (A4 retries and A5 contention compare CPUs).
    var cpu = 0
    var alt = AlternativeState()
    /// Peaks, lifetimes and memory of the design alternatives A4 and A5.
    public internal(set) var alternative = AlternativeStats()
    /// P frames the host resolved at eviction: [to S (dirty), to V (clean)] — usage changes that are
    /// not guest transitions.
    public internal(set) var hostResolved = [UInt64](repeating: 0, count: 2)

    public init(options: ReplayOptions) {
        self.options = options
        rng = options.seed &* 0x9E37_79B9_7F4A_7C15 | 1
        fp = frames.base
        rowBase = .allocate(capacity: rowCapacity)
        rp = rowBase
        lastRowOfHook = .allocate(capacity: Hook.allCases.count)
        lastRowOfHook.initialize(repeating: (CounterKey(hook: .host, site: .max, eventType: .max, inferred: false, policy: 0), -1),
                                 count: Hook.allCases.count)
        _ = row(for: curKey)
        setLastFile(ino: 0, 0)
    }

    deinit {
        files.release()
        fileOf.release()
        inoFile.release()
        rowBase.deinitialize(count: rowCount)
        rowBase.deallocate()
        lastRowOfHook.deallocate()
    }

    // MARK: counters

    func row(for k: CounterKey) -> Int {
        if let r = rowOf[k] { return r }
        let r = rowCount
        if r == rowCapacity {
            let n = rowCapacity * 2
            regrow(&rowBase, count: rowCount, capacity: n)
            rowCapacity = n
            rp = rowBase + cur
        }
        (rowBase + r).initialize(to: HookCounts())
        rowCount += 1
        keys.append(k)
        rowOf.set(k, r)
        return r
    }

    /// The last (key, row) used per hook: within one event the site, type and stack stay the same while
    /// the hooks alternate, so most `begin`s find their row here without hashing.
    let lastRowOfHook: UnsafeMutablePointer<(key: CounterKey, row: Int)>

    /// Starts a hook execution: costs go to (hook, site, event type, inferred) until the next `begin`.
    @inline(__always)
    func begin(_ hook: Hook, site: UInt32, eventType: UInt32, inferred: InferencePolicy = .none, stack: UInt32 = 0) {
        let k = CounterKey(hook: hook, site: site, eventType: eventType, inferred: inferred != .none, policy: inferred.rawValue, stack: stack)
        if k != curKey {
            curKey = k
            let h = Int(hook.rawValue)
            if lastRowOfHook[h].key == k {
                cur = lastRowOfHook[h].row
            } else {
                cur = row(for: k)
                lastRowOfHook[h] = (k, cur)
            }
        }
        rp.pointee.executions &+= w
        steps &+= 1
    }

    /// Hook executions begun (`begin`), a batched step of a folio counting once: the model's unit of work
    /// per event once folio batching has run (`make bench` prints it per event, and the time per step).
    public private(set) var steps: UInt64 = 0

    func note(_ what: String, _ n: UInt64 = 1) { notes[what, default: 0] += n &* w }

    func violation(_ what: String) {
        violationCount += 1
        if violations.count < 20 { violations.append(what) }
        note("violation: " + what.split(separator: ":").first.map(String.init)!)
    }

    public var violationSamples: [String] { violations }

    // MARK: state changes (census kept exact)

    @inline(__always)
    func setGuest(_ i: Int, _ s: GuestState) {
        let f = fp[i]
        let from = f.guestRaw
        if from == s.rawValue { return }
        censusStore[Int(from) * 3 + Int(f.hostRaw)] -= wi
        censusStore[Int(s.rawValue) * 3 + Int(f.hostRaw)] += wi
        rp.pointee.transitions[Int(from) * 4 + Int(s.rawValue)] &+= w
        fp[i].guestRaw = s.rawValue
    }

    @inline(__always)
    func setHost(_ i: Int, _ h: HostState) {
        let f = fp[i]
        if f.hostRaw == h.rawValue { return }
        censusStore[Int(f.guestRaw) * 3 + Int(f.hostRaw)] -= wi
        censusStore[Int(f.guestRaw) * 3 + Int(h.rawValue)] += wi
        if f.hostRaw == HostState.resident.rawValue { hostResident -= wi }
        if h == .resident { hostResident += wi }
        fp[i].hostRaw = h.rawValue
    }

    /// Index of a frame, creating it (U, z) when new.
    @inline(__always)
    func frame(_ pfn: UInt64) -> Int {
        let before = frames.count
        let i = frames.index(pfn)
        if frames.count > before { censusStore[Int(GuestState.unused.rawValue) * 3 + Int(HostState.zero.rawValue)] += 1 }
        return i
    }

    /// Index of the frame of `pfn` and of the `n - 1` pfns after it, created (U, z) where new, in pfn order
    /// (`frame` page by page, in one pass). Returns the first one's, and how many were created.
    func frameRun(_ pfn: UInt64, _ n: Int) -> (first: Int, created: Int) {
        let r = frames.indexRun(pfn, n)
        censusStore[Int(GuestState.unused.rawValue) * 3 + Int(HostState.zero.rawValue)] += r.created
        return r
    }

    // MARK: architecture primitives (spec §2.1), one ESSA each per 4 KiB page

    @inline(__always) func essa(_ c: Essa) { rp.pointee.essa[c.rawValue] &+= w }
    @inline(__always) func phd() { rp.pointee.phd &+= w }
    @inline(__always) func flagTest() { rp.pointee.flagTests &+= w }

    /// `page_set_unused`: host drops a preserved copy (Sp → Uz frees the host slot).
    func setUnused(_ i: Int) {
        if options.baseline { return }
        essa(.setUnused)
        if fp[i].host == .preserved {
            setHost(i, .zero)
            rp.pointee.hostDrops &+= w   // the host never reads this slot back
        }
        setGuest(i, .unused)
    }

    /// `page_set_stable`.
    @inline(__always)
    func setStable(_ i: Int) {
        essa(.setStable)
        setGuest(i, .stable)
    }

    /// `page_set_volatile(page, writable)`: V, or P for a writable page on a per-page-dirty arch
    /// (s390); on a per-pte-dirty arch "writable volatile" is S. A request for P on a z frame yields V.
    @inline(__always)
    func setVolatile(_ i: Int, writable: Bool) {
        if options.baseline { return }
        essa(writable ? .setPVolatile : .setVolatile)
        var target: GuestState = writable ? (options.perPageDirty ? .potentiallyVolatile : .stable) : .volatile
        if target == .potentiallyVolatile && fp[i].host == .zero { target = .volatile }
        if fp[i].host == .preserved && target == .volatile {
            // Sp → Vz: the host forgets its copy; a later access is a discard, not a host read.
            setHost(i, .zero)
            rp.pointee.hostDrops &+= w
        }
        setGuest(i, target)
    }

    /// `page_set_stable_if_present`: fails iff the frame is Vz.
    func setStableIfPresent(_ i: Int) -> Bool {
        essa(.setStableIfNotDiscarded)
        if hostDiscarded(i) { return false }
        setGuest(i, .stable)
        return true
    }

    /// `page_discarded()` ≡ usage V and content z.
    @inline(__always)
    func hostDiscarded(_ i: Int) -> Bool {
        fp[i].guestRaw == GuestState.volatile.rawValue && fp[i].hostRaw == HostState.zero.rawValue
    }

    // MARK: the predicate (spec §3.3)

    /// The flags the predicate's clauses before the counts read, and their values when all of them pass.
    static let predicateFlags = FrameFlags([.reserved, .dirty, .writeback, .locked, .privateData, .discarded, .uptodate, .lru,
                                            .anon, .swapCache, .inCache, .mlocked]).rawValue
    static let predicatePasses = FrameFlags([.uptodate, .lru, .inCache]).rawValue

    /// The first clause that keeps the page stable, or nil when it may become volatile.
    @inline(__always)
    func predicate(_ i: Int, offset: Int) -> Clause? {
        let f = fp[i]
        let fl = f.flags
        // The common case in one test: up to date, on an LRU and in the page cache, none of the flags that
        // keep a page stable, not anonymous, not in the swap cache: every clause before the counts passes
        // on every series (those below are tested in order, and they give the same answer).
        if fl.rawValue & Self.predicateFlags == Self.predicatePasses {
            return Int(f.mapcount) + offset != Int(f.refcount) ? .counts : nil
        }
        if fl.contains(.reserved) { return .reserved }
        if fl.contains(.dirty) { return .dirty }
        if fl.contains(.writeback) { return .writeback }
        if fl.contains(.locked) { return .locked }
        if fl.contains(.privateData) { return .privateData }
        if fl.contains(.discarded) { return .discarded }
        if !fl.contains(.uptodate) { return .notUptodate }
        if series >= .g06 && !fl.contains(.lru) { return .notLRU }
        if fl.contains(.anon) && !(series >= .g06 && fl.contains(.swapCache)) { return .anon }
        if series == .g09 && fl.contains(.swapCache) && !fl.contains(.anon) { return .swapCacheNotAnon }
        if !fl.contains(.inCache) && !fl.contains(.swapCache) { return .noMapping }
        if fl.contains(.mlocked) { return .mlocked }
        if Int(f.mapcount) + offset != Int(f.refcount) { return .counts }
        return nil
    }

    // MARK: generic primitives (spec §2.2)

    /// `page_make_stable`: wait for the state-change lock, then set stable if present. On failure the
    /// caller discards the page (`pageDiscard`). Returns success.
    @discardableResult
    func makeStable(_ i: Int) -> Bool {
        rp.pointee.makeStable &+= w
        phd()
        if fp[i].guestRaw == GuestState.stable.rawValue {
            // Already stable: the ESSA is still issued (the guest cannot know).
            essa(.setStableIfNotDiscarded)
            return true
        }
        if setStableIfPresent(i) { return true }
        rp.pointee.makeStableFailed &+= w
        return false
    }

    /// `page_make_volatile(page, offset)`: try-lock, predicate, set volatile. Never fails to the caller.
    func makeVolatile(_ i: Int, offset: Int, countPHD: Bool = true) {
        rp.pointee.makeVolatile &+= w
        if countPHD { phd() }
        if series == .g06 {
            // G06 returns early on PG_discarded before taking the lock.
            if discardTest(i, guards: false) { rp.pointee.clauses[Clause.discarded.rawValue] &+= w; return }
        }
        rp.pointee.lockTry &+= w
        if let c = predicate(i, offset: offset) {
            rp.pointee.clauses[c.rawValue] &+= w
            return
        }
        let g = fp[i].guestRaw
        let writable = fp[i].flags.contains(.writable)
        if (g == GuestState.volatile.rawValue && !writable) || (g == GuestState.potentiallyVolatile.rawValue && writable) {
            essa(writable ? .setPVolatile : .setVolatile)   // already there; the ESSA is issued anyway
            return
        }
        setVolatile(i, writable: writable)
    }

    /// `pagevec_make_volatile` (G07/G09): one PHD per vector of at most 14 pages, MV(1) per page.
    func pagevecMakeVolatile(_ pages: [Int]) {
        var k = 0
        while k < pages.count {
            phd()
            for p in pages[k..<min(k + 14, pages.count)] { makeVolatile(p, offset: 1, countPHD: false) }
            k += 14
        }
    }

    /// `page_check_writable(page, pte, offset)`: before a writable pte is established.
    func checkWritable(_ i: Int, offset: Int) {
        if fp[i].flags.contains(.writable) { return }   // inline fast path
        rp.pointee.checkWritable &+= w
        phd()
        rp.pointee.lockSpin &+= w
        fp[i].flags.insert(.writable)
        if predicate(i, offset: offset) == nil {
            setVolatile(i, writable: true)
        } else if !setStableIfPresent(i) {
            rp.pointee.makeStableFailed &+= w
        }
    }

    /// `page_reset_writable`: the last mapping went away.
    func resetWritable(_ i: Int) {
        guard fp[i].flags.contains(.writable) else { return }
        rp.pointee.resetWritable &+= w
        phd()
        rp.pointee.lockTry &+= w
        fp[i].flags.remove(.writable)
    }

    /// `page_discard` / `__page_discard`: the guest removes a page the host discarded — every pte,
    /// the LRU, the page cache (nocheck removal). The frame keeps PG_discarded until it is freed.
    func pageDiscard(_ i: Int) {
        if fp[i].flags.contains(.discarded) { return }  // someone else is removing it
        discardLockAcquire()
        if options.discardTracking == .discardLock && fp[i].flags.contains(.isolated) {
            // A5: reclaim on another CPU holds the page isolated; its put-back (LRU re-add) or removal
            // comes after the lock is released and nothing tells it the page was discarded. The model
            // frees the discarded frame at once (`reload`), so the later guarded test cannot see it:
            // the violation is counted here.
            rp.pointee.correctnessViolations &+= w
        }
        markDiscarded(i)
        let m = fp[i].mapcount
        if m > 0 {
            fp[i].refcount = max(0, fp[i].refcount - m)
            fp[i].mapcount = 0
        }
        fp[i].flags.remove(.latentFault)
        if fp[i].flags.contains(.lru) { unlinkGuestLRU(i) }
    }

    /// The guest reads a discarded page back from its own disk: modelled as the old frame being freed
    /// (through the discard list) and its content arriving in a frame that keeps the pfn the trace uses.
    func reload(_ i: Int) {
        rp.pointee.reloadIO &+= w
        // Free the discarded frame (A2d, flushed at once: no CPU can still fault on it in the model).
        clearDiscarded(i)
        fp[i].flags.remove([.parked, .latentFault])
        setUnused(i)
        // New frame for the content: A3 set stable, read I/O makes it resident and up to date.
        setStable(i)
        hostTouch(i, write: true)
        fp[i].flags.insert(.uptodate)
        fp[i].flags.remove(.locked)
        // The re-read page joins the LRU again (add_to_page_cache_lru), on the inactive list: each page of a
        // batched step (`w` frames from i, the tails still off every list), in turn.
        if fp[i].flags.contains(.inCache) && !fp[i].flags.contains(.isolated) {
            let list = fp[i].flags.contains(.anon) ? 0 : 2
            for k in i..<(i + wi) { linkGuestLRU(k, list: list) }
        }
    }

    // MARK: guest LRU (simulated lists, for isolation events that carry no pfns)

    @inline(__always)
    func linkGuestLRU(_ i: Int, list: Int) {
        if fp[i].lru != 255 { unlinkGuestLRU(i) }
        let l = min(max(list, 0), 4)
        let i32 = Int32(i)
        fp[i].lru = UInt8(l)
        fp[i].lruPrev = -1
        fp[i].lruNext = guestLRU[l].head
        if guestLRU[l].head >= 0 { fp[Int(guestLRU[l].head)].lruPrev = i32 } else { guestLRU[l].tail = i32 }
        guestLRU[l].head = i32
        guestLRU[l].count += 1
        fp[i].flags.insert(.lru)
        if l == 1 || l == 3 { fp[i].flags.insert(.active) } else { fp[i].flags.remove(.active) }
    }

    func unlinkGuestLRU(_ i: Int) {
        let l = Int(fp[i].lru)
        fp[i].flags.remove(.lru)
        guard l < 5 else { return }
        let p = fp[i].lruPrev, n = fp[i].lruNext
        if p >= 0 { fp[Int(p)].lruNext = n } else { guestLRU[l].head = n }
        if n >= 0 { fp[Int(n)].lruPrev = p } else { guestLRU[l].tail = p }
        fp[i].lru = 255
        fp[i].lruPrev = -1
        fp[i].lruNext = -1
        guestLRU[l].count -= 1
    }

    // MARK: host emulator (spec §5.1)

    /// A host-visible touch: the frame moves to the hot end of the host LRU; a preserved frame is read
    /// back (host I/O), a zero frame is backed by a fresh frame. Discarded (Vz) frames are the caller's
    /// business (discard fault or failed make_stable) before it touches them.
    @inline(__always)
    func hostTouch(_ i: Int, write: Bool = false) {
        switch fp[i].host {
        case .preserved:
            rp.pointee.hostReads &+= w
            setHost(i, .resident)
        case .zero:
            setHost(i, .resident)
        case .resident:
            break
        }
        // Without a budget the host never evicts, so its LRU order is never read: not kept.
        guard budgetFrames != Int.max else { return }
        hostLRUTouch(i)
    }

    /// `hostTouch` under a budget: the frame (or the batch's frames) to the hot end, then evictions.
    @inline(never)
    func hostLRUTouch(_ i: Int) {
        if w == 1 {
            hostLRUToFront(i)
            if hostResident > budgetFrames { evict() }
            return
        }
        // A batched touch of frames i ..< i + w (`Replay.hostAllows`): each moves to the hot end in turn,
        // then the victims, none of them these frames, are evicted one by one.
        hostLRUToFront(run: i, wi)
        if hostResident > budgetFrames {
            let weight = w
            w = 1
            evict()
            w = weight
        }
    }

    /// The host LRU's links (`FrameTable.hostLinks`), kept from the first host LRU operation on.
    var hostLinks: UnsafeMutablePointer<HostLinks> {
        if let l = frames.hostLinks { return l }
        frames.enableHostLinks()
        return frames.hostLinks.unsafelyUnwrapped
    }

    func hostLRUToFront(_ i: Int) {
        let i32 = Int32(i)
        if fp[i].flags.contains(.onHostLRU) {
            if hostLRU.head == i32 { return }
            hostUnlink(i)
        }
        let hl = hostLinks
        hl[i].prev = -1
        hl[i].next = hostLRU.head
        if hostLRU.head >= 0 { hl[Int(hostLRU.head)].prev = i32 } else { hostLRU.tail = i32 }
        hostLRU.head = i32
        hostLRU.count += 1
        fp[i].flags.insert(.onHostLRU)
    }

    /// `hostLRUToFront` on frames i, i + 1, ..., i + n - 1 in turn. When the list starts with them already,
    /// last to first (a batched touch of the same run was the last to move them), each move puts back
    /// the order it found: nothing to do.
    func hostLRUToFront(run i: Int, _ n: Int) {
        if hostLRU.head == Int32(i + n - 1) {
            let hl = hostLinks
            var v = Int(hostLRU.head), j = n - 1
            while j > 0 && hl[v].next == Int32(i + j - 1) {
                v = i + j - 1
                j -= 1
            }
            if j == 0 { return }
        }
        // Each moves to the hot end in turn (`hostLRUToFront`, unlink and link in one, the links read once).
        let hl = hostLinks
        var head = hostLRU.head, tail = hostLRU.tail, count = hostLRU.count
        for k in i..<(i + n) {
            let k32 = Int32(truncatingIfNeeded: k)
            if fp[k].flags.contains(.onHostLRU) {
                if head == k32 { continue }
                let p = hl[k].prev, nx = hl[k].next
                if p >= 0 { hl[Int(p)].next = nx } else { head = nx }
                if nx >= 0 { hl[Int(nx)].prev = p } else { tail = p }
            } else {
                fp[k].flags.insert(.onHostLRU)
                count += 1
            }
            hl[k].prev = -1
            hl[k].next = head
            if head >= 0 { hl[Int(head)].prev = k32 } else { tail = k32 }
            head = k32
        }
        hostLRU.head = head
        hostLRU.tail = tail
        hostLRU.count = count
    }

    func hostUnlink(_ i: Int) {
        guard fp[i].flags.contains(.onHostLRU) else { return }
        let hl = hostLinks
        let p = hl[i].prev, n = hl[i].next
        if p >= 0 { hl[Int(p)].next = n } else { hostLRU.head = n }
        if n >= 0 { hl[Int(n)].prev = p } else { hostLRU.tail = p }
        hl[i].prev = -1
        hl[i].next = -1
        hostLRU.count -= 1
        fp[i].flags.remove(.onHostLRU)
    }

    /// Runs `body` with its costs charged to the host row of the event being replayed (hook `host`, the
    /// event's site, type and stack), as evictions are; no execution is counted.
    @inline(__always)
    func hostWork(_ body: () -> Void) {
        let saved = cur
        cur = hostRow()
        body()
        cur = saved
    }

    /// The host row of the event being replayed: looked up once per (site, type, stack) in a row, not
    /// once per victim (an event that evicts many pages under a host budget asked the row map for each).
    @inline(__always)
    func hostRow() -> Int {
        if hostRowOf.row >= 0 && event.site == hostRowOf.site && event.type == hostRowOf.type && event.stack == hostRowOf.stack {
            return hostRowOf.row
        }
        return learnHostRow()
    }

    @inline(never)
    func learnHostRow() -> Int {
        let r = row(for: CounterKey(hook: .host, site: event.site, eventType: event.type, inferred: false, policy: 0, stack: event.stack))
        hostRowOf = (event.site, event.type, event.stack, r)
        return r
    }

    /// The last host row looked up, and the event it was for (rows never move or go).
    var hostRowOf: (site: UInt32, type: UInt32, stack: UInt32, row: Int) = (.max, .max, .max, -1)

    func random() -> UInt64 {
        rng ^= rng << 13
        rng ^= rng >> 7
        rng ^= rng << 17
        return rng
    }

    /// Evicts resident frames until the host is within its budget. The victim's guest state decides
    /// the cost (spec §5.1 table): U and V and clean P are dropped without I/O, S and dirty P are written.
    func evict() {
        precondition(w == 1, "host eviction inside a folio batch")
        while hostResident > budgetFrames {
            guard let v = pickVictim() else { return }
            hostUnlink(v)
            let saved = cur
            // Host work is charged to the host row of the event being replayed.
            cur = hostRow()
            switch fp[v].guest {
            case .unused:
                setHost(v, .zero)
                rp.pointee.hostDrops &+= w
            case .volatile:
                setHost(v, .zero)
                rp.pointee.hostDiscards &+= w
                rp.pointee.hostDrops &+= w
                discarded(v)
            case .potentiallyVolatile:
                if fp[v].flags.contains(.hwDirty) {
                    rp.pointee.hostWrites &+= w
                    fp[v].guestRaw = GuestState.potentiallyVolatile.rawValue
                    // The host resolves a dirty P frame to Sp (state becomes stable).
                    censusStore[Int(GuestState.potentiallyVolatile.rawValue) * 3 + Int(fp[v].hostRaw)] -= 1
                    censusStore[Int(GuestState.stable.rawValue) * 3 + Int(fp[v].hostRaw)] += 1
                    fp[v].guestRaw = GuestState.stable.rawValue
                    hostResolved[0] += w
                    setHost(v, .preserved)
                } else {
                    censusStore[Int(GuestState.potentiallyVolatile.rawValue) * 3 + Int(fp[v].hostRaw)] -= 1
                    censusStore[Int(GuestState.volatile.rawValue) * 3 + Int(fp[v].hostRaw)] += 1
                    fp[v].guestRaw = GuestState.volatile.rawValue
                    hostResolved[1] += w
                    setHost(v, .zero)
                    rp.pointee.hostDiscards &+= w
                    rp.pointee.hostDrops &+= w
                    discarded(v)
                }
            case .stable:
                rp.pointee.hostWrites &+= w
                setHost(v, .preserved)
            }
            cur = saved
        }
    }

    /// After the host discarded a frame: a mapped frame faults when next touched (T0), or at once (T1).
    func discarded(_ v: Int) {
        if fp[v].mapcount > 0 {
            if options.touches == .T1 {
                rp.pointee.discardFaults &+= w
                pageDiscard(v)
                reload(v)
            } else {
                fp[v].flags.insert(.latentFault)
            }
        }
    }

    func pickVictim() -> Int? {
        switch options.hostPolicy {
        case .lru:
            return hostLRU.tail >= 0 ? Int(hostLRU.tail) : nil
        case .random:
            guard hostLRU.count > 0 else { return nil }
            // Walk a random distance from the cold end (bounded), deterministic for a seed.
            var k = Int(random() % UInt64(min(hostLRU.count, 4096)))
            var v = hostLRU.tail
            while k > 0 && hostLinks[Int(v)].prev >= 0 { v = hostLinks[Int(v)].prev; k -= 1 }
            return Int(v)
        case .oracle:
            var v = hostLRU.tail
            var scanned = 0
            while v >= 0 && scanned < 1 << 16 {
                let f = fp[Int(v)]
                if f.guest == .unused || f.guest == .volatile || (f.guest == .potentiallyVolatile && !f.flags.contains(.hwDirty)) {
                    return Int(v)
                }
                v = hostLinks[Int(v)].prev
                scanned += 1
            }
            return hostLRU.tail >= 0 ? Int(hostLRU.tail) : nil
        }
    }

    // MARK: invariants (spec issue: checked on every event in tests)

    func checkFrame(_ i: Int) {
        let f = fp[i]
        if f.flags.contains(.inCache) && !f.flags.contains(.allocated) && !f.flags.contains(.tail) {
            violation("cached and free: pfn \(frames.pfn(i))")
        }
        if (f.guest == .volatile || f.guest == .potentiallyVolatile) && !f.flags.contains(.parked) {
            if f.flags.contains(.dirty) { violation("volatile and dirty: pfn \(frames.pfn(i))") }
            if f.flags.contains(.writeback) { violation("volatile under writeback: pfn \(frames.pfn(i))") }
            if f.flags.contains(.locked) { violation("volatile and locked: pfn \(frames.pfn(i))") }
            if !f.flags.contains(.uptodate) { violation("volatile and not up to date: pfn \(frames.pfn(i))") }
        }
    }

    /// A deterministic text of every counter row (sorted keys), the census and the notes: two replays of
    /// the same input with the same options give the same fingerprint.
    public var fingerprint: String {
        var out = ""
        for i in keys.indices.sorted(by: { keys[$0] < keys[$1] }) {
            let k = keys[i], r = rowBase[i]
            out += "\(k.hook.id) \(k.site) \(k.eventType) \(k.inferred) \(k.policy): \(r.executions) \(r.phd) \(r.flagTests) "
            out += "\(r.essaTotal) \(r.transitionTotal) \(r.hostDiscards) \(r.hostWrites) \(r.hostReads) \(r.syncDiscards) \(r.discardFaults)\n"
        }
        out += census.map(String.init).joined(separator: ",") + "\n"
        for (k, v) in notes.sorted(by: { $0.key < $1.key }) { out += "\(k)=\(v)\n" }
        return out
    }

    /// Counter rows merged over stacks: one row per (hook, site, event type, inferred, policy), sorted.
    public func rowsBySite() -> [(CounterKey, HookCounts)] {
        var merged: [CounterKey: HookCounts] = [:]
        for (i, k) in keys.enumerated() {
            var kk = k
            kk.stack = 0
            merged[kk, default: HookCounts()].add(rowBase[i])
        }
        return merged.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Totals over every counter row.
    public var totals: HookCounts {
        var t = HookCounts()
        for i in 0..<rowCount { t.add(rowBase[i]) }
        return t
    }
}

/// The files frames were cached from, by file id (`Frame.file`): id 0 is (0, 0). A buffer of its own,
/// grown by doubling, read without reference counting.
/// File ids by a key of the file's, without the key: an open-addressing table of 32-bit words (`id + 1`,
/// 0 empty) probed linearly from the key's hash, a probe comparing the key the file table holds for the
/// id (as the pfn index compares the frame's pfn). 4 bytes a slot, at most 70% full: 5.7 to 11.4 bytes
/// per file, where a map of keys and ids took 48 to 96 ((dev, ino) → id) and 32 to 64 (inode → id).
struct FileIdTable {
    private var table: UnsafeMutablePointer<UInt32>
    private var slots = 1 << 10
    private var used = 0

    init() {
        table = .allocate(capacity: slots)
        table.initialize(repeating: 0, count: slots)
    }

    func release() { table.deallocate() }

    /// Bytes allocated.
    var bytes: Int { slots * MemoryLayout<UInt32>.stride }

    /// The slot holding the id that `matches` takes, from hash `h`, and that id; else the empty slot that
    /// ends the probe and nil.
    @inline(__always)
    func probe(_ h: UInt64, _ matches: (UInt32) -> Bool) -> (slot: Int, id: UInt32?) {
        let mask = slots - 1
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let e = table[s]
            if e == 0 { return (s, nil) }
            if matches(e &- 1) { return (s, e &- 1) }
            s = (s + 1) & mask
        }
    }

    /// Enters `id` at the empty slot `probe` gave (nothing changed since); `hash` gives an id's hash, for
    /// the doubling.
    mutating func insert(at s: Int, _ id: UInt32, hash: (UInt32) -> UInt64) {
        table[s] = id &+ 1   // ids are below the file count: never 2^32 - 1
        used += 1
        if used * 10 > slots * 7 { grow(hash) }
    }

    /// The slot `probe` found holds `id` now.
    mutating func replace(at s: Int, _ id: UInt32) { table[s] = id &+ 1 }

    private mutating func grow(_ hash: (UInt32) -> UInt64) {
        let old = table, n = slots
        slots = n * 2
        table = .allocate(capacity: slots)
        table.initialize(repeating: 0, count: slots)
        let mask = slots - 1
        for k in 0..<n where old[k] != 0 {
            var s = Int(truncatingIfNeeded: hash(old[k] &- 1)) & mask
            while table[s] != 0 { s = (s + 1) & mask }
            table[s] = old[k]
        }
        old.deallocate()
    }
}

struct FileTable {
    private(set) var base: UnsafeMutablePointer<(dev: UInt32, ino: UInt64)>
    private(set) var count = 1
    private var capacity = 64

    init() {
        base = .allocate(capacity: capacity)
        base.initialize(to: (0, 0))
    }

    func release() { base.deallocate() }

    /// Bytes allocated.
    var bytes: Int { capacity * MemoryLayout<(dev: UInt32, ino: UInt64)>.stride }

    @inline(__always)
    subscript(_ id: Int) -> (dev: UInt32, ino: UInt64) { base[id] }

    mutating func append(_ dev: UInt32, _ ino: UInt64) {
        if count == capacity {
            regrow(&base, count: count, capacity: capacity * 2)
            capacity *= 2
        }
        (base + count).initialize(to: (dev, ino))
        count += 1
    }
}
