import TraceModel

/// Drives the model from trace events: the event-by-event mapping of spec §6.B, with the inference
/// policies of §6.C for what traces do not show. One `consume` per event; no allocation per event
/// beyond the model's tables.
public final class Replay: EventSink {
    public let model: HintingModel
    public let resolver: CallSiteResolver
    var opts: ReplayOptions { model.options }
    var series: Series { model.series }

    enum Kind {
        case alloc, free, freeBatched, add, delete, getPages, mapPages, fault, lruInsertion, lruActivate
        case isolate, shrinkInactive, shrinkActive, writeFolio, directBegin, memcgBegin, reclaimEnd
        case dirtyFolio, waitWriteback, pageFaultUser, fork, exit, other

        /// Whether the handler may defer tails' state (`Replay.deferring`): it takes every frame it names by
        /// pfn or key through `own`/`ownHead`/`touch`, and every folio's tails through `batchable`,
        /// `physical`, `eachFolioFrame` or the read's `readableRun`. The one other (a shrink of an active
        /// list) changes the pages of the folios it moves one by one.
        var defersTails: Bool {
            switch self {
            case .alloc, .free, .freeBatched, .add, .delete, .lruInsertion, .isolate, .shrinkInactive,
                 .directBegin, .memcgBegin, .reclaimEnd, .pageFaultUser, .other,
                 .mapPages, .fault, .fork, .exit, .lruActivate, .getPages, .writeFolio, .dirtyFolio, .waitWriteback: true
            default: false
            }
        }
    }
    /// Where an event type's fields are (indices into `Event.values`, -1 when absent): 24 bytes per type.
    struct Fields {
        var kind = Kind.other
        var known = false
        /// Whether events of the type may defer tails' state (`Replay.deferring`).
        var defers = false
        var pfn: Int8 = -1, order: Int8 = -1, ino: Int8 = -1, dev: Int8 = -1, index: Int8 = -1, lastIndex: Int8 = -1
        var lru: Int8 = -1, flags: Int8 = -1
        var nrTaken: Int8 = -1, nrScanned: Int8 = -1, nrAct0: Int8 = -1, nrAct1: Int8 = -1, nrDeact: Int8 = -1
        var reclaimFlags: Int8 = -1, priority: Int8 = -1
        var errorCode: Int8 = -1, childPid: Int8 = -1, parentPid: Int8 = -1, exitPid: Int8 = -1
    }
    /// Per event type: where its fields are, how many events of it were replayed, and the call site per
    /// stack id (stack ids are dense: a plain array, `UInt32.max` where not yet resolved). Held in a
    /// buffer of its own, grown by doubling, so the loop reads it with no reference counting.
    struct TypeSlot {
        var fields = Fields()
        var events: UInt64 = 0
        var sites: UnsafeMutablePointer<UInt32>? = nil
        var siteCapacity = 0
    }
    var types: UnsafeMutablePointer<TypeSlot> = .allocate(capacity: 1)
    var typeCapacity = 0

    /// Events replayed (the sum of the per-type counts: the replay loop counts each event once, per type).
    public var events: UInt64 {
        var n: UInt64 = 0
        for t in 0..<typeCapacity { n &+= types[t].events }
        return n
    }
    /// Whether an event was replayed (`firstTimestamp` is set).
    var started = false
    /// Events replayed per event type id.
    public var eventsByType: [UInt64] {
        var n = typeCapacity
        while n > 0 && types[n - 1].events == 0 { n -= 1 }
        return (0..<n).map { types[$0].events }
    }
    public internal(set) var inferredOps: UInt64 = 0
    /// 4 KiB pages the events named (a folio of order n counts 2^n, a look-up range its length): the unit
    /// of the replay's work.
    public internal(set) var pagesTouched: UInt64 = 0
    /// Page steps run batched (folio batching: `batchable`), counted in pages.
    public internal(set) var batchedPages: UInt64 = 0
    /// An emptied list of isolated folios, kept for the next isolation (`onIsolate`, `onShrinkInactive`).
    var spareIsolated: [Int32] = []
    public internal(set) var firstTimestamp: UInt64 = 0
    /// The last event's timestamp (the model's clock).
    public var lastTimestamp: UInt64 { model.now }

    // Per-CPU reclaim state.
    struct PerCPU {
        /// Pages taken off an LRU by the last isolation, and the list they came from.
        var isolated: [Int32]? = nil
        var isolatedFrom = -1
        var reclaimPriority: Int64? = nil
        var inReclaim = false
    }
    var perCPU: [PerCPU] = []
    /// Page-cache removals during reclaim and outside it (truncate/invalidate), for the notes.
    var reclaimDeletes: UInt64 = 0
    var otherDeletes: UInt64 = 0

    /// The reclaim state of a CPU (grown on first use).
    @inline(__always)
    func cpuIndex(_ c: Int) -> Int {
        if c >= perCPU.count { perCPU.append(contentsOf: repeatElement(PerCPU(), count: c + 1 - perCPU.count)) }
        return c
    }
    // Mappings per process (M0 drops them at exit), the last user fault's write bit per pid.
    var mappings = Mappings()
    /// The most bytes the per-process mappings held at once.
    public var mappingsPeakBytes: Int { mappings.peakBytes }
    var lastFaultWrite = FastMap<UInt64, Bool>(emptyKey: 0, emptyValue: false)
    /// The latest user fault's pid and write bit, entered into `lastFaultWrite` only when a fault of
    /// another pid follows (a process faults in runs): `faultWrite(pid:)` reads both.
    var faultPid: UInt64 = .max
    var faultWriteBit = false

    /// Whether the last user fault of `pid` was a write.
    func faultWrite(pid: Int32) -> Bool {
        let p = UInt64(UInt32(bitPattern: pid))
        return p == faultPid ? faultWriteBit : lastFaultWrite[p] ?? false
    }

    @inline(__always)
    func onUserFault(pid: Int32, write: Bool) {
        let p = UInt64(UInt32(bitPattern: pid))
        if p != faultPid {
            if faultPid != .max { lastFaultWrite.set(faultPid, faultWriteBit) }
            faultPid = p
        }
        faultWriteBit = write
    }

    /// Timeline samples: (trace time, census of combined states Sr Sp Sz Ur Up Uz Vr Vp Vz Pr Pp Pz).
    public internal(set) var timeline: [(UInt64, [Int])] = []
    var nextSample: UInt64 = 0

    /// The event being replayed: its call site, type and stack (held by the model, which keys counters by them).
    var site: UInt32 { model.event.site }
    var etype: UInt32 { model.event.type }
    var stack: UInt32 { model.event.stack }

    public init(options: ReplayOptions, rules: CallSiteRules = .defaults) {
        model = HintingModel(options: options)
        resolver = CallSiteResolver(rules: rules, depth: options.depth)
    }

    /// Sets the host budget from the number of frames the guest touched (a first pass over the trace).
    public func setBudget(touchedFrames: Int) {
        switch opts.hostBudget {
        case .unlimited: model.budgetFrames = Int.max
        case .percent(let p): model.budgetFrames = max(1, Int((Double(touchedFrames) * p / 100).rounded(.down)))
        case .bytes(let b): model.budgetFrames = max(1, Int(b / 4096))
        }
    }

    // MARK: field lookup

    deinit {
        runSegments.deallocate()
        staleTails.release()
        mappings.release()
        for t in 0..<typeCapacity { types[t].sites?.deallocate() }
        types.deallocate()
    }

    /// The slot of event type `t`, its fields learnt on first use.
    @inline(__always)
    func slot(_ t: EventTypeID, _ ctx: TraceContext) -> UnsafeMutablePointer<TypeSlot> {
        let ti = Int(t)
        if ti < typeCapacity && types[ti].fields.known { return types + ti }
        return learnFields(t, ctx)
    }

    @inline(never)
    func learnFields(_ t: EventTypeID, _ ctx: TraceContext) -> UnsafeMutablePointer<TypeSlot> {
        let ti = Int(t)
        if ti >= typeCapacity {
            let n = max(ti + 1, typeCapacity * 2, 16)
            regrow(&types, count: typeCapacity, capacity: n)
            (types + typeCapacity).initialize(repeating: TypeSlot(), count: n - typeCapacity)
            typeCapacity = n
        }
        let et = ctx.types[ti]
        func ix(_ names: String...) -> Int8 {
            for n in names { if let i = et.fieldIndex(n), i < Event.maxFields { return Int8(i) } }
            return -1
        }
        var f = Fields()
        f.known = true
        switch et.name {
        case "mm_page_alloc": f.kind = .alloc
        case "mm_page_free": f.kind = .free
        case "mm_page_free_batched": f.kind = .freeBatched
        case "mm_filemap_add_to_page_cache": f.kind = .add
        case "mm_filemap_delete_from_page_cache": f.kind = .delete
        case "mm_filemap_get_pages": f.kind = .getPages
        case "mm_filemap_map_pages": f.kind = .mapPages
        case "mm_filemap_fault": f.kind = .fault
        case "mm_lru_insertion": f.kind = .lruInsertion
        case "mm_lru_activate": f.kind = .lruActivate
        case "mm_vmscan_lru_isolate": f.kind = .isolate
        case "mm_vmscan_lru_shrink_inactive": f.kind = .shrinkInactive
        case "mm_vmscan_lru_shrink_active": f.kind = .shrinkActive
        case "mm_vmscan_write_folio", "mm_vmscan_writepage": f.kind = .writeFolio
        case "mm_vmscan_direct_reclaim_begin": f.kind = .directBegin
        case "mm_vmscan_memcg_reclaim_begin", "mm_vmscan_memcg_softlimit_reclaim_begin", "mm_vmscan_node_reclaim_begin":
            f.kind = .memcgBegin
        case "mm_vmscan_direct_reclaim_end", "mm_vmscan_memcg_reclaim_end", "mm_vmscan_memcg_softlimit_reclaim_end",
             "mm_vmscan_node_reclaim_end":
            f.kind = .reclaimEnd
        case "writeback_dirty_folio", "writeback_dirty_page": f.kind = .dirtyFolio
        case "folio_wait_writeback", "wait_on_page_writeback": f.kind = .waitWriteback
        case "page_fault_user": f.kind = .pageFaultUser
        case "sched_process_fork": f.kind = .fork
        case "sched_process_exit": f.kind = .exit
        default: f.kind = .other
        }
        f.pfn = ix("pfn"); f.order = ix("order"); f.ino = ix("i_ino", "ino"); f.dev = ix("s_dev")
        f.index = ix("index"); f.lastIndex = ix("last_index"); f.lru = ix("lru"); f.flags = ix("flags")
        f.nrTaken = ix("nr_taken"); f.nrScanned = ix("nr_scanned"); f.nrAct0 = ix("nr_activate0"); f.nrAct1 = ix("nr_activate1")
        f.nrDeact = ix("nr_deactivated"); f.reclaimFlags = ix("reclaim_flags"); f.priority = ix("priority")
        f.errorCode = ix("error_code"); f.childPid = ix("child_pid"); f.parentPid = ix("parent_pid"); f.exitPid = ix("pid")
        // The host budget is set before the first event.
        f.defers = mayDefer && model.budgetFrames == Int.max && f.kind.defersTails
        types[ti].fields = f
        return types + ti
    }

    /// Interned call site of an event of type slot `ts` with kernel stack `stack`.
    @inline(__always)
    func callSite(_ ts: UnsafeMutablePointer<TypeSlot>, type t: Int, stack: Int, _ ctx: TraceContext) -> UInt32 {
        if stack < ts.pointee.siteCapacity {
            let s = ts.pointee.sites.unsafelyUnwrapped[stack]
            if s != UInt32.max { return s }
        }
        return learnSite(ts, type: t, stack: stack, ctx)
    }

    @inline(never)
    func learnSite(_ ts: UnsafeMutablePointer<TypeSlot>, type t: Int, stack: Int, _ ctx: TraceContext) -> UInt32 {
        let s = resolver.site(type: EventTypeID(t), stack: StackID(stack), ctx).site
        if stack >= ts.pointee.siteCapacity {
            let n = max(stack + 1, ts.pointee.siteCapacity * 2, 64)
            var b = ts.pointee.sites ?? .allocate(capacity: 0)
            regrow(&b, count: ts.pointee.siteCapacity, capacity: n)
            (b + ts.pointee.siteCapacity).initialize(repeating: UInt32.max, count: n - ts.pointee.siteCapacity)
            ts.pointee.sites = b
            ts.pointee.siteCapacity = n
        }
        ts.pointee.sites.unsafelyUnwrapped[stack] = s
        return s
    }

    /// Field `i` of the event (its index in the type's field table, -1 where the type lacks it), 0 when the
    /// event does not carry it. One comparison: a missing field's -1 is 255 unsigned, past any count; the
    /// mask keeps the read inside the 16 values whatever the count says.
    @inline(__always)
    func v(_ e: UnsafePointer<Event>, _ i: Int8) -> Int64 {
        let u = UInt8(bitPattern: i)
        if u >= e.pointee.fieldCount { return 0 }
        return e.pointee.values[Int(u & 15)]   // `values` holds 16 (`Event.maxFields`)
    }


    // MARK: the replay loop

    public func consume(_ e: borrowing Event, context ctx: TraceContext) {
        withUnsafePointer(to: e) { replay(at: $0, ctx) }
    }

    /// One event, read in place (no copy of the event). Inlined into the loops that call it, so that its
    /// registers are saved once per batch of events, not once per event.
    @inline(__always)
    func replay(at e: UnsafePointer<Event>, _ ctx: TraceContext) {
        let ts = slot(e.pointee.type, ctx)
        // The field table is read in place: a copy of it would cost a load and a store per field.
        let f = ts.pointer(to: \.fields)!
        let t = Int(e.pointee.type)
        ts.pointee.events &+= 1
        model.now = e.pointee.timestamp
        model.cpu = Int(e.pointee.cpu)
        model.event = (f.pointee.kind == .other ? 0 : callSite(ts, type: t, stack: Int(e.pointee.stack), ctx),
                       e.pointee.type, e.pointee.stack)
        // Tails left deferred by earlier events take their state before an event whose steps may read them.
        deferring = f.pointee.defers
        if !deferring && deferredCount > 0 { materializeAll() }
        if series >= .g07 && !model.discardList.isEmpty { signOffDiscardList() }
        if e.pointee.timestamp >= nextSample { sample(at: e.pointee.timestamp) }
        let cpu = Int(e.pointee.cpu)
        // One switch both counts the pages the event names (`pagesTouched`) and replays it.
        switch f.pointee.kind {
        case .alloc:
            let o = v(e, f.pointee.order), pfn = v(e, f.pointee.pfn)
            countPages(order: o)
            // pfn -1: the allocation failed (no page); onAlloc ignores it.
            guard pfn == -1 || pageNumber(pfn) else { outOfRange(); break }
            onAlloc(pfn: pfn, order: Int(o))
        case .free:
            let o = v(e, f.pointee.order), pfn = v(e, f.pointee.pfn)
            countPages(order: o)
            guard pageNumber(pfn) else { outOfRange(); break }
            onFree(pfn: pfn, order: Int(o))
        case .add:
            let o = v(e, f.pointee.order), pfn = v(e, f.pointee.pfn), k = key(e, f)
            countPages(order: o)
            guard pageNumber(pfn) && pageNumber(k.index) else { outOfRange(); break }
            onAdd(pfn: UInt64(bitPattern: pfn), key: k, order: Int(o), cpu: cpu)
        case .delete:
            let o = v(e, f.pointee.order), pfn = v(e, f.pointee.pfn)
            countPages(order: o)
            guard pageNumber(pfn) else { outOfRange(); break }
            onDelete(pfn: UInt64(bitPattern: pfn), order: Int(o), cpu: cpu)
        case .getPages:
            let last = v(e, f.pointee.lastIndex), k = key(e, f)
            countPages(from: Int64(bitPattern: k.index), to: last)
            guard pageNumber(k.index) else { outOfRange(); break }
            onGetPages(k, last: UInt64(bitPattern: last))
        case .mapPages:
            let last = v(e, f.pointee.lastIndex), k = key(e, f)
            countPages(from: Int64(bitPattern: k.index), to: last)
            guard pageNumber(k.index) else { outOfRange(); break }
            onMapPages(k, last: UInt64(bitPattern: last), pid: e.pointee.pid)
        default:
            pagesTouched &+= 1
            switch f.pointee.kind {
            case .freeBatched: onFreeBatched(pfn: v(e, f.pointee.pfn))
            case .fault:
                let k = key(e, f)
                guard pageNumber(k.index) else { outOfRange(); break }
                onFault(k, pid: e.pointee.pid)
            case .lruInsertion:
                let pfn = v(e, f.pointee.pfn)
                guard pageNumber(pfn) else { outOfRange(); break }
                onLRUInsertion(pfn: UInt64(bitPattern: pfn), lru: Int(v(e, f.pointee.lru)), flags: v(e, f.pointee.flags))
            case .lruActivate:
                let pfn = v(e, f.pointee.pfn)
                guard pageNumber(pfn) else { outOfRange(); break }
                onLRUActivate(pfn: UInt64(bitPattern: pfn))
            case .isolate: onIsolate(cpu: cpu, taken: Int(v(e, f.pointee.nrTaken)), scanned: Int(v(e, f.pointee.nrScanned)), lru: Int(v(e, f.pointee.lru)))
            case .shrinkInactive:
                onShrinkInactive(cpu: cpu, toActive: Int(v(e, f.pointee.nrAct0)) &+ Int(v(e, f.pointee.nrAct1)), priority: v(e, f.pointee.priority))
            case .shrinkActive:
                onShrinkActive(cpu: cpu, taken: Int(v(e, f.pointee.nrTaken)), deactivated: Int(v(e, f.pointee.nrDeact)), file: v(e, f.pointee.reclaimFlags) & 0x2 != 0)
            case .writeFolio:
                let pfn = v(e, f.pointee.pfn)
                guard pageNumber(pfn) else { outOfRange(); break }
                onWriteFolio(pfn: UInt64(bitPattern: pfn))
            case .directBegin: onReclaimBegin(cpu: cpu, direct: true)
            case .memcgBegin: onReclaimBegin(cpu: cpu, direct: opts.memcgIsDirectReclaim)
            case .reclaimEnd: let c = cpuIndex(cpu); perCPU[c].inReclaim = false; perCPU[c].reclaimPriority = nil
            case .dirtyFolio:
                let x = v(e, f.pointee.index)
                guard pageNumber(x) else { outOfRange(); break }
                onDirty(ino: UInt64(bitPattern: v(e, f.pointee.ino)), index: UInt64(bitPattern: x))
            case .waitWriteback:
                let x = v(e, f.pointee.index)
                guard pageNumber(x) else { outOfRange(); break }
                onWaitWriteback(ino: UInt64(bitPattern: v(e, f.pointee.ino)), index: UInt64(bitPattern: x))
            case .pageFaultUser: onUserFault(pid: e.pointee.pid, write: v(e, f.pointee.errorCode) & 0x2 != 0)
            case .fork: onFork(parent: Int32(truncatingIfNeeded: v(e, f.pointee.parentPid)), child: Int32(truncatingIfNeeded: v(e, f.pointee.childPid)))
            case .exit: onExit(pid: Int32(truncatingIfNeeded: v(e, f.pointee.exitPid)))
            case .alloc, .free, .add, .delete, .getPages, .mapPages, .other: break
            }
        }
        if opts.discardTracking == .seqlock { model.sampleVolatile() }
    }

    /// Pfns and page indices the model takes: below 2^56. x86-64 addresses at most 2^52 bytes of physical
    /// memory (pfns below 2^40) and a file holds at most 2^51 pages, so a larger value names no page: the
    /// event is skipped and noted (`outOfRange`), and a folio's pages or a look-up range past it never
    /// wrap around 2^64.
    static let pageNumberLimit: UInt64 = 1 << 56
    @inline(__always)
    func pageNumber(_ x: Int64) -> Bool { UInt64(bitPattern: x) < Self.pageNumberLimit }
    @inline(__always)
    func pageNumber(_ x: UInt64) -> Bool { x < Self.pageNumberLimit }
    @inline(never)
    func outOfRange() { model.note("events naming a pfn or page index of 2^56 or more, skipped") }

    /// Timeline samples due by trace time `ts` (the first event's time starts the timeline).
    @inline(never)
    func sample(at ts: UInt64) {
        if !started {
            started = true
            firstTimestamp = ts
            nextSample = ts
        }
        while ts >= nextSample {
            timeline.append((nextSample, model.census))
            nextSample += opts.timelineInterval
        }
    }

    /// Replays events held in memory, in order (the replay benchmark).
    public func consumeAll(_ events: UnsafeBufferPointer<Event>, context ctx: TraceContext) {
        guard var p = events.baseAddress else { return }
        let end = p + events.count
        while p < end {
            replay(at: p, ctx)
            p += 1
        }
    }

    /// Closes the replay: a last timeline sample.
    public func finish() {
        materializeAll()
        timeline.append((lastTimestamp, model.census))
        if reclaimDeletes > 0 { model.note("delete by reclaim", reclaimDeletes) }
        if otherDeletes > 0 { model.note("delete by truncate/invalidate", otherDeletes) }
    }

    /// Pages of a folio of order `o` (1 when the order is out of range).
    @inline(__always)
    func countPages(order o: Int64) { pagesTouched &+= o >= 0 && o <= 12 ? 1 << UInt64(o) : 1 }

    /// Pages of the look-up range [a, b] (at most 2^20 + 1; 1 when empty). The bounds are the trace's
    /// values: their difference may not fit in an Int64.
    @inline(__always)
    func countPages(from a: Int64, to b: Int64) {
        pagesTouched &+= b >= a ? min(UInt64(bitPattern: b &- a), 1 << 20) + 1 : 1
    }

    @inline(__always)
    func key(_ e: UnsafePointer<Event>, _ f: UnsafeMutablePointer<Fields>) -> CacheKey {
        CacheKey(dev: UInt32(truncatingIfNeeded: v(e, f.pointee.dev)), ino: UInt64(bitPattern: v(e, f.pointee.ino)),
                 index: UInt64(bitPattern: v(e, f.pointee.index)))
    }


    @inline(__always)
    func begin(_ h: Hook, _ p: InferencePolicy = .none) {
        if p != .none { inferredOps += model.w }
        model.begin(h, site: site, eventType: etype, inferred: p, stack: stack)
    }

    func check(_ i: Int) { if opts.checkInvariants { model.checkFrame(i) } }

    /// The frames of the folio headed by frame `i` (its order from allocation or page-cache insertion).
    @inline(__always)
    func folio(_ i: Int) -> FolioFrames {
        let f = model.fp[i]
        if f.order == 0 { return FolioFrames(head: i, pages: 1, contiguous: true, replay: self) }
        return FolioFrames(head: i, pages: 1 << Int(f.order), contiguous: f.flags.contains(.contiguous), replay: self)
    }

    /// After an allocation or page-cache insertion of a folio of `n` pages headed by frame `head`: whether its
    /// pages' frames follow the head (`FrameFlags.contiguous`), so that `folio` can iterate them as a range.
    func markContiguous(_ head: Int, _ n: Int, _ contiguous: Bool) {
        if n > 1 && contiguous { model.fp[head].flags.insert(.contiguous) } else { model.fp[head].flags.remove(.contiguous) }
    }

    // MARK: folio batching

    /// Whether large folios may be batched: a page step run once on the head with weight 2^order
    /// (`HintingModel.w`) and the resulting page state copied to the tails, instead of once per page.
    /// It gives exactly what the per-page steps give when every page of the folio holds the same page
    /// state and the step touches no structure kept per frame besides the frame itself and the host LRU
    /// (whose per-page order the batched host touch keeps). That holds without the
    /// alternatives that keep per-frame bookkeeping (A1's references, A4's side lists, A5's lock) or the
    /// invariant checks (which name each page); with a host budget, only where the host's choices come out
    /// the same (`hostAllows`). Otherwise every page takes its own step.
    lazy var batching: Bool = opts.folioBatching && !opts.checkInvariants && !opts.a1 && opts.discardTracking == .pageFlag

    /// How the tails' `tail` flag comes out of a batched step: set (allocation, page-cache insertion),
    /// cleared (free), or as it was.
    enum TailFlag { case set, clear, keep }

    /// Whether the `n` frames from frame `i` are the pages of one folio in pfn order (frames `i + k` of pfn
    /// `pfn(i) + k`) holding the same page state: flags (but `tail`, `active` and `contiguous`, which no step
    /// reads and `spread` keeps per frame), counts, guest and host state; none discarded, parked or
    /// faulting, none Vz, no tail on a guest LRU.
    @inline(__always)
    func batchable(_ i: Int, _ n: Int) -> Bool {
        guard n > 1 && batching && i + n <= model.frames.count && hostAllows(i, n) else { return false }
        if deferredCount > 0 {
            // A folio whose tails' state is deferred holds the head's page state throughout.
            if isDeferred(i) {
                if 1 << Int(model.fp[i].order) == n { return headBatchable(i) }
                materialize(i)
            }
            clearOfDeferred(i, n)
        }
        return uniformRun(i, n, x: nil) == n
    }

    /// Whether a batched step on the `n` frames from `i` leaves the host as `n` steps would. Without a budget
    /// the host never evicts. With one, under the `lru` policy and T0, a step touches each page once at
    /// most: the pages move to the hot end in order, and if they were not resident the host evicts
    /// `hostResident + n - budget` victims from the cold end. Those are pages that were on the host LRU
    /// before the step (the folio's pages were not: only resident pages are on it) when it holds at least
    /// that many, so the folio's pages are never victims and the victims are the same. Other policies pick
    /// victims by state or at random, and T1 reloads them: one step per page.
    @inline(__always)
    func hostAllows(_ i: Int, _ n: Int) -> Bool { n <= hostLimit(i) }

    /// The most frames from frame `i` that a batched step may take for the host (`hostAllows`): any number
    /// without a budget or when they are resident, as many as the host LRU can give victims for under
    /// `lru` and T0, else 1.
    @inline(__always)
    func hostLimit(_ i: Int) -> Int {
        if model.budgetFrames == Int.max { return Int.max }
        guard opts.hostPolicy == .lru, opts.touches == .T0 else { return 1 }
        if model.fp[i].hostRaw == HostState.resident.rawValue { return Int.max }
        return max(1, model.hostLRU.count + model.budgetFrames - model.hostResident)
    }

    /// The page state compared by `uniformRun`, in two words: the flags but `tail` and `active`; the
    /// refcount, mapcount, guest and host state (the 8 bytes from `refcount`, less `order` and `lru`).
    static let stateFlagMask = ~(FrameFlags([.tail, .active, .contiguous]).rawValue | FrameFlags.deferral.rawValue)
    /// Stored per replay, not `static`: a static computed at run time costs a `swift_once` call per use.
    let countsOffset = MemoryLayout<Frame>.offset(of: \Frame.refcount)!
    /// The masks assume a little-endian machine and this field order; elsewhere nothing is batched.
    let wordsFit: Bool = {
        let counts = MemoryLayout<Frame>.offset(of: \Frame.refcount)!
        return MemoryLayout<Frame>.offset(of: \Frame.lru)! == counts + 7 && MemoryLayout<Frame>.offset(of: \Frame.order)! == counts + 6
            && UInt16(1).littleEndian == 1
    }()
    static let countsMask: UInt64 = 0x0000_FFFF_FFFF_FFFF
    static let lruNone: UInt64 = 0xFF00_0000_0000_0000

    /// Whether frame `i` may head a batched step, as `uniformRun` asks of it: not discarded, parked, with a
    /// latent fault, or Vz.
    @inline(__always)
    func headBatchable(_ i: Int) -> Bool {
        let h = model.fp + i
        return wordsFit && h.pointee.flags.rawValue & (FrameFlags.discarded.rawValue | FrameFlags.parked.rawValue | FrameFlags.latentFault.rawValue) == 0
            && !(h.pointee.guestRaw == GuestState.volatile.rawValue && h.pointee.hostRaw == HostState.zero.rawValue)
    }

    /// How many frames from frame `i` (at most `n`) are pages that a step may take as one: frames `i + k` of
    /// pfn `pfn(i) + k` — with `x`, page-cache pages of `i`'s file at indices `x + k` — holding `i`'s page
    /// state (`stateFlagMask`, counts, guest and host state), none after the first on a guest LRU unless
    /// `lruTails` (a read, which moves no page on a guest LRU). 0 when
    /// frame `i` itself cannot be batched: discarded, parked, with a latent fault, or Vz.
    func uniformRun(_ i: Int, _ n: Int, x: UInt64?, lruTails: Bool = false) -> Int {
        let fp = model.fp
        let h = fp + i
        let p = h.pointee.pfnLow
        let fl = h.pointee.flags.rawValue
        guard headBatchable(i) else { return 0 }
        // Pfns of 2^32 - 1 and above are kept aside (`pfnLow` is UInt32.max): not batched.
        let limit = min(n, model.frames.count - i, Int(UInt32.max) - 1 - Int(p))
        if limit <= 1 { return 1 }
        let want = fl & Self.stateFlagMask
        let lruNone = lruTails ? 0 : Self.lruNone
        let counts = (UnsafeRawPointer(h).loadUnaligned(fromByteOffset: countsOffset, as: UInt64.self) & Self.countsMask) | lruNone
        let tailMask = Self.countsMask | lruNone
        var f = h + 1
        var k = 1
        if let x {
            guard x < UInt64(UInt32.max) - UInt64(n) else { return 1 }
            let file = h.pointee.file
            while k < limit {
                let y = f.pointee
                if y.pfnLow != p &+ UInt32(k) || y.flags.rawValue & Self.stateFlagMask != want
                    || UnsafeRawPointer(f).loadUnaligned(fromByteOffset: countsOffset, as: UInt64.self) & tailMask != counts
                    || y.file != file || y.indexLow != UInt32(x) &+ UInt32(k) { break }
                f += 1
                k += 1
            }
        } else {
            while k < limit {
                if f.pointee.pfnLow != p &+ UInt32(k) || f.pointee.flags.rawValue & Self.stateFlagMask != want
                    || UnsafeRawPointer(f).loadUnaligned(fromByteOffset: countsOffset, as: UInt64.self) & tailMask != counts { break }
                f += 1
                k += 1
            }
        }
        return k
    }

    /// What `spread(_, _, .keep)` copies from head `i` to its tails: the flags but a tail's own (`tail`,
    /// `contiguous`, `active`), and the counts and states (`countsMask`).
    @inline(__always)
    func pageState(_ i: Int) -> (flags: UInt32, counts: UInt64) { pageState(of: model.fp + i) }

    @inline(__always)
    func pageState(of h: UnsafePointer<Frame>) -> (flags: UInt32, counts: UInt64) {
        (h.pointee.flags.rawValue & Self.stateFlagMask,
         UnsafeRawPointer(h).loadUnaligned(fromByteOffset: countsOffset, as: UInt64.self) & Self.countsMask)
    }

    /// After a batched step on head `i`: the tails take the head's page state.
    /// The tails' `contiguous` flag (which only heads carry) is cleared with `set` and `clear`, as the
    /// per-page steps of allocation, insertion and free clear it, and kept otherwise. Their `active` flag
    /// (which a step sets only through a guest LRU, page by page) stays theirs, but where the step starts
    /// the page afresh (`fresh`: allocation and free clear every flag).
    func spread(_ i: Int, _ n: Int, _ tail: TailFlag, fresh: Bool = false) {
        batchedPages &+= UInt64(n)
        let fp = model.fp
        let h = fp[i]
        let active = fresh ? 0 : FrameFlags.active.rawValue
        // (The flags as words: an option-set literal here was built as an array on every call.)
        let own = FrameFlags.tail.rawValue | FrameFlags.contiguous.rawValue | active | FrameFlags.deferral.rawValue
        // A tail's flags become `fl | (its own flags & keep)`: with `set`, the head's and `tail` (and its
        // `active`); with `clear`, the head's (and its `active`); with `keep`, the head's and its own `tail`,
        // `contiguous` and `active`.
        let fl = h.flags.rawValue & ~own | (tail == .set ? FrameFlags.tail.rawValue : 0)
        let keep = tail == .keep ? own & ~FrameFlags.deferral.rawValue : active
        var f = fp + (i + 1)
        for _ in 1..<n {
            copyState(h, to: f, flags: fl, keep: keep)
            f += 1
        }
    }

    /// Frame `f` takes head `h`'s page state: flags `fl` with its own flags in `keep`, the counts, guest
    /// and host state.
    @inline(__always)
    func copyState(_ h: Frame, to f: UnsafeMutablePointer<Frame>, flags fl: UInt32, keep: UInt32) {
        f.pointee.flags = FrameFlags(rawValue: fl | (f.pointee.flags.rawValue & keep))
        f.pointee.refcount = h.refcount
        f.pointee.mapcount = h.mapcount
        f.pointee.guestRaw = h.guestRaw
        f.pointee.hostRaw = h.hostRaw
    }

    /// `spread(i, n, .set)` after the insertion of the `n` pages from frame `i` into the page cache at
    /// indices `x`, `x + 1`, ... of `file` (a run below 2^32 - 1): in the same pass, the tails take their keys.
    func spreadInserted(_ i: Int, _ n: Int, file: UInt32, x: UInt32) {
        batchedPages &+= UInt64(n)
        let fp = model.fp
        let h = fp[i]
        let active = FrameFlags.active.rawValue
        let fl = h.flags.rawValue & Self.stateFlagMask | FrameFlags.tail.rawValue
        var f = fp + (i + 1)
        var y = x
        for k in 1..<n {
            y &+= 1
            if f.pointee.indexLow == UInt32.max { model.bigPageIndex.remove(UInt64(i + k)) }
            f.pointee.file = file
            f.pointee.indexLow = y
            copyState(h, to: f, flags: fl, keep: active)
            f += 1
        }
    }

    /// After a batched step on frame `i`: the `n` frames from frame `j` (pages of another folio, or of none)
    /// take `i`'s page state, keeping their own `tail`, `contiguous` and `active` flags (`spread`'s `keep`).
    func spreadTo(_ i: Int, _ j: Int, _ n: Int) {
        let fp = model.fp
        let h = fp[i]
        // (A head's deferral bits are its own too: `spreadReadTo`.)
        let own = FrameFlags.tail.rawValue | FrameFlags.contiguous.rawValue | FrameFlags.active.rawValue | FrameFlags.deferral.rawValue
        let fl = h.flags.rawValue & Self.stateFlagMask
        var f = fp + j
        for _ in 0..<n {
            copyState(h, to: f, flags: fl, keep: own)
            f += 1
        }
    }

    // MARK: deferred tails

    /// Whether batched steps may leave their folio's tails as they were and note on the head the state they
    /// are to take (`deferSpread`): with batching, no host budget, and none of the alternatives that step
    /// page by page at isolation, put-back or look-up (A2a, A3a, A3c).
    lazy var mayDefer: Bool = batching && !opts.a2a && !opts.a3a && !opts.a3c
    /// Whether the event being replayed may defer: `mayDefer` without a host budget, and its handler takes
    /// every frame it names through the checks below (`Kind.defersTails`; per event type: `Fields.defers`). Before any other event, every deferred folio's
    /// tails take their state (`materializeAll`).
    var deferring = false
    /// Heads whose tails' state is deferred (`FrameFlags.deferred`), in the order they began (some since
    /// taken out: `materialize` passes them over), and how many are.
    var deferredHeads: [Int32] = []
    var deferredCount = 0
    /// Frames that are tails of a folio with deferred state: their own state is stale.
    var staleTails = FrameBits()

    /// Bytes the deferred-tail bookkeeping holds.
    public var deferredBytes: Int { staleTails.bytes + deferredHeads.capacity * 4 }

    /// Whether frame `h` heads a folio whose tails' state is deferred (of `1 << order` pages).
    @inline(__always)
    func isDeferred(_ h: Int) -> Bool { model.fp[h].flags.rawValue & FrameFlags.deferred.rawValue != 0 }

    /// `spread(h, n, tail, fresh:)` — or `spreadInserted` with `keysPending`, with `zeroOrder` the
    /// allocation's order reset — deferred: the tails of the folio of `n` pages headed by frame `h` keep what
    /// they hold, and the head notes what they are to take (`FrameFlags.deferral`). The folio holds the
    /// head's page state throughout; a later batched step on it needs no look at its tails (`batchable`).
    /// It must hold the head's state before the step (`batchable`, `uniformRun`, or fresh frames), its
    /// frames following the head, and the head's order be the folio's. `keysKnown`: the tails' keys were
    /// checked to follow the head's (`uniformRun(x:)`).
    @inline(__always)
    func deferSpread(_ h: Int, _ n: Int, _ tail: TailFlag, fresh: Bool = false, keysKnown: Bool = false,
                     keysPending: Bool = false, zeroOrder: Bool = false, counted: Bool = true) {
        if counted { batchedPages &+= UInt64(n) }
        deferredSteps &+= 1
        let f = model.fp + h
        var fl = f.pointee.flags.rawValue
        if fl & FrameFlags.deferred.rawValue == 0 {
            fl = fl & ~FrameFlags.deferral.rawValue | FrameFlags.deferred.rawValue | (keysKnown ? FrameFlags.deferKeysKnown.rawValue : 0)
            beginDeferring(h, n)
        }
        switch tail {
        case .set: fl = fl & ~FrameFlags.deferClearTail.rawValue | FrameFlags.deferSetTail.rawValue
        case .clear: fl = fl & ~FrameFlags.deferSetTail.rawValue | FrameFlags.deferClearTail.rawValue
        case .keep: break
        }
        if fresh { fl |= FrameFlags.deferDropActive.rawValue }
        if keysPending { fl |= FrameFlags.deferKeysKnown.rawValue | FrameFlags.deferKeysPending.rawValue }
        if zeroOrder { fl |= FrameFlags.deferZeroOrder.rawValue }
        f.pointee.flags = FrameFlags(rawValue: fl)
    }

    /// Whether a batched step on the `n` pages from frame `h` may defer its spread: the event defers, and the
    /// head's order is the folio's (it gives the size of the run `materialize` writes; an event may name an
    /// order other than the one the head was allocated or cached with).
    /// Folios of fewer pages are not deferred: the spread of their few tails costs about what deferring it
    /// does, and a few such folios left deferred for long (an order-3 allocation kept for the whole trace)
    /// make every event take the checks that deferred folios ask for: on k6.1-memcg-reclaim, 380
    /// instructions per event with folios of 8 pages deferred, 360 without (353 with no deferring at all).
    @inline(__always)
    func canDefer(_ h: Int, _ n: Int) -> Bool { deferring && n >= deferMinPages && 1 << Int(model.fp[h].order) == n }
    /// (A variable for the tests, which defer smaller folios to take these paths more often.)
    var deferMinPages = 16
    /// Batched steps whose spread was deferred.
    public internal(set) var deferredSteps: UInt64 = 0

    @inline(never)
    func beginDeferring(_ h: Int, _ n: Int) {
        staleTails.setRange(h + 1, n - 1)
        if deferredHeads.count > 4 * deferredCount + 1024 {
            // Heads materialized one by one leave their entries: drop them.
            deferredHeads.removeAll { !isDeferred(Int($0)) }
        }
        deferredHeads.append(Int32(truncatingIfNeeded: h))
        deferredCount += 1
    }

    /// The tails of the folio headed by `h`, if deferred, take their state now: the head's page state (or
    /// `head`'s, a copy of it taken before a change to the head alone), with their own `tail`,
    /// `contiguous` and `active` flags as the deferred spreads leave them, their keys and order.
    func materialize(_ h: Int, from head: Frame? = nil) {
        let fp = model.fp
        let ops = fp[h].flags.rawValue
        guard ops & FrameFlags.deferred.rawValue != 0 else { return }
        fp[h].flags = FrameFlags(rawValue: ops & ~FrameFlags.deferral.rawValue)
        deferredCount -= 1
        let n = 1 << Int(fp[h].order)
        staleTails.clearRange(h + 1, n - 1)
        let hf = head ?? fp[h]
        let tailBit = FrameFlags.tail.rawValue, contiguous = FrameFlags.contiguous.rawValue, active = FrameFlags.active.rawValue
        let setTail = ops & FrameFlags.deferSetTail.rawValue != 0
        let keepTail = ops & (FrameFlags.deferSetTail.rawValue | FrameFlags.deferClearTail.rawValue) == 0
        let fl = hf.flags.rawValue & Self.stateFlagMask | (setTail ? tailBit : 0)
        let keep = (keepTail ? tailBit | contiguous : 0) | (ops & FrameFlags.deferDropActive.rawValue == 0 ? active : 0)
        var f = fp + (h + 1)
        if ops & FrameFlags.deferKeysPending.rawValue != 0 {
            // `spreadInserted`'s pass.
            var y = hf.indexLow
            for k in 1..<n {
                y &+= 1
                if f.pointee.indexLow == UInt32.max { model.bigPageIndex.remove(UInt64(h + k)) }
                f.pointee.file = hf.file
                f.pointee.indexLow = y
                copyState(hf, to: f, flags: fl, keep: keep)
                f += 1
            }
        } else {
            for _ in 1..<n {
                copyState(hf, to: f, flags: fl, keep: keep)
                f += 1
            }
        }
        if ops & FrameFlags.deferZeroOrder.rawValue != 0 {
            // The allocation's reset of the tails' order (`onAlloc`).
            f = fp + (h + 1)
            for _ in 1..<n {
                f.pointee.order = 0
                f += 1
            }
        }
    }

    /// Every deferred folio's tails take their state.
    @inline(never)
    func materializeAll() {
        for h in deferredHeads { materialize(Int(h)) }
        deferredHeads.removeAll(keepingCapacity: true)
    }

    /// Frame `i`, found by pfn or key by a handler that defers: when it is a tail whose state is deferred,
    /// its folio's tails take their state (the head is the nearest frame below it that is no such tail).
    @inline(__always)
    func own(_ i: Int) {
        if deferredCount > 0 && staleTails.test(i) { materialize(staleTails.lastClear(below: i)) }
    }

    /// `own(h)` for the head of a folio of `n` pages: and if `h` heads a deferred folio of another size,
    /// that folio's tails take their state.
    @inline(__always)
    func ownHead(_ h: Int, pages n: Int) {
        guard deferredCount > 0 else { return }
        own(h)
        if isDeferred(h) && 1 << Int(model.fp[h].order) != n { materialize(h) }
    }

    /// The folio headed by frame `head`, which an event names by pfn, as its order gives it: `own(head)` first
    /// (a deferred tail's order is stale). A deferred head's order is its folio's, so no other check.
    @inline(__always)
    func ownFolio(_ head: Int) -> FolioFrames {
        own(head)
        return folio(head)
    }

    /// `own(i)` for a frame about to change alone: a deferred folio it heads takes its tails' state first.
    @inline(__always)
    func touch(_ i: Int) {
        guard deferredCount > 0 else { return }
        own(i)
        materialize(i)
    }

    /// Before a look at frames `i + 1 ..< i + n` as a folio's tails, when frame `i` is not a deferred head:
    /// any deferred folio with a frame among them (a deferred tail, or a deferred head, whose first tail
    /// follows it), which only a folio overlapping another the trace did not free can make, takes its state.
    @inline(__always)
    func clearOfDeferred(_ i: Int, _ n: Int) {
        while let s = staleTails.firstSet(i + 1, n) { materialize(staleTails.lastClear(below: s)) }
    }

    /// Before a step that reads or writes the tails of folio `f` one by one: they hold their own state.
    @inline(__always)
    func physical(_ f: FolioFrames) {
        guard f.pages > 1, deferredCount > 0 else { return }
        if !f.contiguous {
            for i in f { touch(i) }
            return
        }
        materialize(f.head)
        clearOfDeferred(f.head, f.pages)
    }

    /// `eachFrame` for a bookkeeping change every page of folio `f` takes alike (flags no `spread` keeps
    /// per frame, the refcount): on the head alone when its tails' state is deferred (they take the head's).
    @inline(__always)
    func eachFolioFrame(_ f: FolioFrames, tailsOnly: Bool = false, _ body: (UnsafeMutablePointer<Frame>) -> Void) {
        if deferredCount > 0 {
            if f.pages > 1 && isDeferred(f.head) {   // of `f.pages` pages: the head's order
                if !tailsOnly { body(model.fp + f.head) }
                return
            }
            physical(f)
        }
        eachFrame(f, tailsOnly: tailsOnly, body)
    }

    /// `uniformRun(i, lim, x: x, lruTails:)` for a read (`onGetPages`, `readRun`) with deferred folios
    /// about: a deferred head (whose tails' keys follow its own) gives its folio's pages, as many as the read
    /// takes; a run from a frame that is not deferred stops before the next deferred head in its frames.
    @inline(__always)
    func readableRun(_ i: Int, _ lim: Int, x: UInt64, lruTails: Bool) -> Int {
        guard deferredCount > 0 else { return uniformRun(i, lim, x: x, lruTails: lruTails) }
        if isDeferred(i) {
            if model.fp[i].flags.contains(.deferKeysKnown) && headBatchable(i) { return min(lim, 1 << Int(model.fp[i].order)) }
            materialize(i)
        }
        var r = uniformRun(i, lim, x: x, lruTails: lruTails)
        if r > 1, let s = staleTails.firstSet(i + 1, r - 1) { r = max(1, s - 1 - i) }
        return r
    }

    /// After a read's batched step changed the page state of frame `i` (`head`: it before the step): the `r`
    /// pages of its run take it (`spread`), deferred when they are its folio. A deferred folio read in part
    /// splits: its tails take the state they held, then the read ones the new one.
    @inline(__always)
    func spreadRead(_ i: Int, _ r: Int, before head: Frame?) {
        if let head, 1 << Int(model.fp[i].order) != r { materialize(i, from: head) }
        if canDefer(i, r) { deferSpread(i, r, .keep) } else { spread(i, r, .keep) }
    }

    /// ... and the `rj` pages from frame `j` that joined the step (`spreadTo`): a folio of its own (deferred
    /// or not) takes it on its head, its tails deferred; a deferred folio the read took in part splits.
    @inline(__always)
    func spreadReadTo(_ i: Int, _ j: Int, _ rj: Int) {
        if deferredCount > 0 && isDeferred(j) && 1 << Int(model.fp[j].order) != rj { materialize(j) }
        if rj > 1 && canDefer(j, rj) {
            spreadTo(i, j, 1)
            deferSpread(j, rj, .keep, counted: false)
        } else {
            spreadTo(i, j, rj)
        }
    }

    /// Whether the `n` pages of the folio headed by `head`, cached from index `x` of its file, may leave the
    /// page cache in one batched step (`onDelete`): in one page state, at consecutive keys.
    @inline(__always)
    func deletableRun(_ head: Int, _ n: Int, x: UInt32) -> Bool {
        if deferredCount > 0 {
            if isDeferred(head) {   // of n pages (`ownHead`)
                if model.fp[head].flags.contains(.deferKeysKnown) && UInt64(x) < UInt64(UInt32.max) - UInt64(n) {
                    return headBatchable(head) && hostAllows(head, n)
                }
                materialize(head)
            }
            clearOfDeferred(head, n)
        }
        return uniformRun(head, n, x: UInt64(x)) == n && hostAllows(head, n)
    }

    /// `body` on each frame of folio `f` (its tails alone with `tailsOnly`), in place: a pointer pass when
    /// its frames follow the head. For per-page bookkeeping that calls nothing.
    @inline(__always)
    func eachFrame(_ f: FolioFrames, tailsOnly: Bool = false, _ body: (UnsafeMutablePointer<Frame>) -> Void) {
        if f.contiguous {
            var p = model.fp + f.head
            var n = f.pages
            if tailsOnly { p += 1; n -= 1 }
            for _ in 0..<n {
                body(p)
                p += 1
            }
        } else {
            for i in f where !tailsOnly || i != f.head { body(model.fp + i) }
        }
    }

    /// A page step on each frame of folio `f`: once, batched, when the folio allows it, else once per
    /// page. `body` must touch no per-frame structure but the frame and the host LRU.
    /// Returns whether the step was batched (the tails then hold the head's page state).
    @inline(__always) @discardableResult
    func eachPage(_ f: FolioFrames, tail: TailFlag = .keep, _ body: (Int) -> Void) -> Bool {
        if f.pages > 1 && f.contiguous && batchable(f.head, f.pages) {
            model.w = UInt64(f.pages)
            body(f.head)
            model.w = 1
            if canDefer(f.head, f.pages) { deferSpread(f.head, f.pages, tail) } else { spread(f.head, f.pages, tail) }
            return true
        } else {
            physical(f)
            for k in f { body(k) }
            return false
        }
    }

    /// `page_make_stable`; when the host discarded the page, the caller discards it (a discard found
    /// synchronously) and reads it back. Returns whether the page was present.
    @discardableResult
    func makeStableOrReload(_ i: Int) -> Bool {
        if model.makeStable(i) { return true }
        model.rp.pointee.syncDiscards &+= model.w
        model.pageDiscard(i)
        model.reload(i)
        return false
    }

    // MARK: alternative A1 (spec §7.2): state changes in get_page / put_page

    /// A reference acquisition under A1: make_stable, discard and reload on failure.
    func a1Get(_ i: Int) {
        begin(.getPage, .R0)
        makeStableOrReload(i)
    }

    /// A release that leaves the count above zero under A1: make_volatile(1).
    func a1Put(_ i: Int) {
        begin(.putPage, .R0)
        model.makeVolatile(i, offset: 1)
    }

    var a1: Bool { opts.a1 }

    // MARK: page allocator (A1, A2, A2d, A3)

    func onAlloc(pfn: Int64, order: Int) {
        if pfn == -1 || order < 0 || order > 12 { return }
        let head = UInt64(bitPattern: pfn)
        begin(.A3)
        if order == 0 {
            // An order-0 folio: its one page directly (`allocPage` clears `contiguous`, as `markContiguous` would).
            let i = model.frame(head)
            ownHead(i, pages: 1)
            allocPage(i, k: 0, order: 0, pfn: head)
            return
        }
        let n = 1 << order
        if let (h, fresh) = folioFrames(head, n) {
            if !fresh { ownHead(h, pages: n) }
            if fresh || batchable(h, n) {
                model.w = UInt64(n)
                allocPage(h, k: 0, order: order, pfn: head)
                model.w = 1
                if canDefer(h, n) {
                    // Fresh frames have order 0 already.
                    deferSpread(h, n, .set, fresh: true, zeroOrder: !fresh)
                } else {
                    spread(h, n, .set, fresh: true)
                    var t = model.fp + (h + 1)   // batchable: frames h ..< h + n exist
                    for _ in 1..<n {
                        t.pointee.order = 0
                        t += 1
                    }
                }
                markContiguous(h, n, true)
                return
            }
        }
        // Page by page: each frame takes its own state first, if deferred (`touch`).
        var h = -1, contiguous = true
        for k in 0..<n {
            let i = model.frame(head + UInt64(k))
            touch(i)
            if k == 0 { h = i } else if i != h + k { contiguous = false }
            allocPage(i, k: k, order: order, pfn: head + UInt64(k))
        }
        markContiguous(h, n, contiguous)
    }

    /// The frames of a folio of `n` pages whose head pfn the model has not seen: created in pfn order, as
    /// the per-page steps would create them, so that they follow one another and, all fresh (U, z), take
    /// the allocation as one batched step. Nil (and nothing created) when batching is off. With the head's
    /// frame, whether they may take that step without a check of their state (`fresh`): when all `n` are
    /// new, each is (U, z) with nothing else set, so `uniformRun` would pass all `n`, as `batchable` asks,
    /// where the pfns stay below 2^32 - 1 and the host allows.
    func newFolioFrames(_ head: UInt64, _ n: Int) -> (Int, fresh: Bool)? {
        guard batching else { return nil }
        let r = model.frameRun(head, n)
        return (r.first, r.created == n && wordsFit && head + UInt64(n) < UInt64(UInt32.max) && hostAllows(r.first, n))
    }

    /// The frame of head pfn `head` of a folio of `n` pages, if seen, else `newFolioFrames`.
    @inline(__always)
    func folioFrames(_ head: UInt64, _ n: Int) -> (Int, fresh: Bool)? {
        if let h = model.frames.find(head) { return (h, false) }
        return newFolioFrames(head, n)
    }

    /// A3 for one page of a new folio of `order` (`k`: its place in the folio).
    @inline(__always)
    func allocPage(_ i: Int, k: Int, order: Int, pfn: UInt64) {
        if model.fp[i].flags.contains(.allocated) { model.note("alloc of an allocated frame (missed free)") }
        if model.fp[i].flags.contains(.parked) {
            // The kernel reused a frame the model still holds on its discard list (no discard list in
            // the traced kernel): free it now, then allocate.
            model.note("parked frame reused before sign-off")
            model.discardList.removeAll { $0.frame == Int32(i) }
            model.clearDiscarded(i)
            model.fp[i].flags.remove(.parked)
            freeFrame(i)
            begin(.A3)
        } else if model.fp[i].flags.contains(.discarded) {
            model.violation("allocated with PG_discarded: pfn \(pfn)")
            model.clearDiscarded(i)
        }
        // Everything but the host's own bookkeeping starts afresh.
        model.fp[i].flags = model.fp[i].flags.intersection([.onHostLRU, .deferral]).union(.allocated)
        model.fp[i].refcount = 1
        model.fp[i].mapcount = 0
        model.fp[i].order = k == 0 ? UInt8(order) : 0
        if k > 0 { model.fp[i].flags.insert(.tail) }
        model.setStable(i)   // A3: SS(page, order), PG_writable cleared
        model.hostTouch(i, write: true)
    }

    func onFree(pfn: Int64, order: Int) {
        if order < 0 || order > 12 { return }
        let head = UInt64(bitPattern: pfn)
        guard let h = model.frames.find(head) else {
            // Never seen: allocated before the trace started. The order-0 discard check runs all the same
            // (it cannot be discarded: the model never made it volatile); then the free.
            if order == 0 {
                begin(.A2d)
                discardCheck(-1, guards: false)
            }
            begin(order == 0 ? .A2 : .A1)
            for k in 0..<(1 << order) { let i = model.frame(head + UInt64(k)); touch(i); model.setUnused(i) }
            return
        }
        ownHead(h, pages: 1 << order)
        if order == 0 {
            // A2d: every order-0 free asks whether the frame was discarded — G06 with a literal
            // page_host_discards() (G06-8 ★), G07/G09 through the page_free_discarded() flag test.
            begin(.A2d)
            discardCheck(h, guards: false)
            if model.fp[h].flags.contains(.discarded) {
                // Parked, not freed, until no CPU can still fault on it.
                model.rp.pointee.parked &+= model.w
                model.fp[h].flags.insert(.parked)
                release(h)
                model.discardList.append((Int32(h), model.now))
                return
            }
        }
        begin(order == 0 ? .A2 : .A1)
        if order == 0 { freeFrame(h); return }
        let n = 1 << order
        if !model.fp[h].flags.contains(.inCache) && batchable(h, n) {
            model.w = UInt64(n)
            freeFrame(h)
            model.w = 1
            if canDefer(h, n) { deferSpread(h, n, .clear, fresh: true) } else { spread(h, n, .clear, fresh: true) }
            return
        }
        for k in 0..<n {
            let i = model.frame(head + UInt64(k))
            touch(i)
            freeFrame(i)
        }
    }

    /// The frame leaves every structure and becomes unused (`SU`); PG_discarded ends here.
    func freeFrame(_ i: Int) {
        model.clearDiscarded(i)
        release(i)
        model.fp[i].flags = model.fp[i].flags.intersection([.onHostLRU, .deferral])
        model.setUnused(i)
        check(i)
    }

    /// Drops what a freed frame still holds in the model (a missed delete, LRU, mappings).
    func release(_ i: Int) {
        if model.fp[i].flags.contains(.inCache) {
            model.note("free of a cached frame (missed delete)")
            unbind(i)
        }
        if model.fp[i].flags.contains(.lru) { model.unlinkGuestLRU(i) }
        model.fp[i].refcount = 0
        model.fp[i].mapcount = 0
        model.fp[i].flags.remove([.allocated, .dirty, .writeback, .locked, .uptodate, .privateData, .isolated,
                                      .batchRef, .unlockPending, .writebackPending, .latentFault, .writable])
    }

    func onFreeBatched(pfn: Int64) {
        // The last reference went through release_pages/folios_put: G06/H05b use the no-check
        // decrement there (E4), so no make_volatile attempt. mm_page_free follows for the same frame.
        if series <= .g06 { begin(.E4) }
    }

    /// G07/G09 discard-list sign-off (A8): a parked frame is freed once every CPU has passed a tick
    /// after the next gather step, about two ticks.
    func signOffDiscardList() {
        guard let first = model.discardList.first, model.now >= first.at &+ 2 * opts.tickNs else { return }
        begin(.A8, .discardFlush)
        var k = 0
        while k < model.discardList.count && model.now >= model.discardList[k].at &+ 2 * opts.tickNs {
            let i = Int(model.discardList[k].frame)
            model.clearDiscarded(i)
            model.fp[i].flags.remove(.parked)
            freeFrame(i)
            k += 1
        }
        model.discardList.removeFirst(k)
    }

    /// G06/H05b: `page_shrink_discards` at each direct reclaim pass (A6/H6).
    func flushDiscardList() {
        begin(.A6, .discardFlush)
        if series == .g06 { model.phd() }
        for d in model.discardList {
            let i = Int(d.frame)
            model.clearDiscarded(i)
            model.fp[i].flags.remove(.parked)
            freeFrame(i)
        }
        model.discardList.removeAll()
    }

    // MARK: page cache (B1, B3, D1)

    @inline(__always)
    func bind(_ i: Int, file: UInt32, index: UInt64) {
        model.fp[i].file = file
        model.setPageIndex(i, index)
        model.fp[i].flags.insert(.inCache)
        model.cache.set(file: file, index: index, Int32(i))
    }

    func unbind(_ i: Int) {
        let file = model.fp[i].file, x = model.pageIndex(i)
        model.cache.remove(file: file, index: x, ifBoundTo: Int32(i))
        model.fp[i].flags.remove(.inCache)
    }

    func onAdd(pfn: UInt64, key: CacheKey, order: Int, cpu: Int) {
        if order < 0 || order > 12 { return }
        begin(.B3)
        let head = model.frame(pfn)
        let n = 1 << order
        ownHead(head, pages: n)
        // Interned here, as the binding of the first page would.
        let file = model.fileID(dev: key.dev, ino: key.ino)
        if n > 1 && key.index < UInt64(UInt32.max) - UInt64(n) && batchable(head, n)
            && model.cache.isFree(file: file, x: key.index, frame: head, n) {
            // No key rebound to another frame (a missed delete): the pages are bound as a run (the tails'
            // keys written with their state after the head's step, which reads the head alone).
            if model.fp[head].indexLow == UInt32.max { model.bigPageIndex.remove(UInt64(head)) }
            model.fp[head].file = file
            model.fp[head].indexLow = UInt32(truncatingIfNeeded: key.index)
            model.fp[head].flags.insert(.inCache)
            model.cache.setRun(file: file, x: key.index, frame: head, n)
            model.w = UInt64(n)
            addPage(head, k: 0)
            if opts.unlock == .U0 { unlockPage(head, .U0) } else { model.fp[head].flags.insert(.unlockPending) }
            model.w = 1
            model.fp[head].order = UInt8(order)
            if canDefer(head, n) {
                deferSpread(head, n, .set, keysPending: true)
            } else {
                spreadInserted(head, n, file: file, x: UInt32(truncatingIfNeeded: key.index))
            }
            markContiguous(head, n, true)
            return
        }
        if n == 1 {
            // An order-0 page: the loop below, once, without its folio bookkeeping.
            if let old = model.cache[file: file, index: key.index], Int(old) != head {
                model.note("page-cache key rebound (missed delete)")
                touch(Int(old))
                unbind(Int(old))
            }
            bind(head, file: file, index: key.index)
            addPage(head, k: 0)
            model.fp[head].order = 0
            model.fp[head].flags.remove(.contiguous)
            if a1 { a1Get(head); a1Get(head) }   // the page-cache reference and the caller's
            if opts.unlock == .U0 { unlockPage(head, .U0) } else { model.fp[head].flags.insert(.unlockPending) }
            return
        }
        var contiguous = true
        for k in 0..<n {
            let i = k == 0 ? head : model.frame(pfn + UInt64(k))
            touch(i)
            if i != head + k { contiguous = false }
            if k > 0 { model.fp[i].flags.remove(.contiguous) }
            let x = key.index + UInt64(k)
            if let old = model.cache[file: file, index: x], Int(old) != i {
                model.note("page-cache key rebound (missed delete)")
                touch(Int(old))
                unbind(Int(old))
            }
            bind(i, file: file, index: x)
            addPage(i, k: k)
        }
        model.fp[head].order = UInt8(order)
        markContiguous(head, n, contiguous)
        if a1 { for i in folio(head) { a1Get(i); a1Get(i) } }   // the page-cache reference and the caller's
        if opts.unlock == .U0 {
            for i in folio(head) { unlockPage(i, .U0) }
        } else {
            eachFrame(folio(head)) { $0.pointee.flags.insert(.unlockPending) }
        }
    }

    /// B3 for page `k` of a folio entering the page cache, bound to its key: an implicit allocation when
    /// the allocation was not traced, locked, not up to date, two references.
    @inline(__always)
    func addPage(_ i: Int, k: Int) {
        if !model.fp[i].flags.contains(.allocated) || model.fp[i].guest != .stable {
            // The allocation was not traced (or the frame is not S): the implicit SS.
            begin(.A3, .implicitAlloc)
            model.fp[i].flags.insert(.allocated)
            model.setStable(i)
            begin(.B3)
        }
        model.fp[i].flags.insert(.locked)
        model.clearDiscarded(i)
        model.fp[i].flags.remove([.uptodate, .dirty])
        if k > 0 { model.fp[i].flags.insert(.tail) }
        model.fp[i].refcount = 2      // page cache + the caller
        model.fp[i].mapcount = 0
        model.hostTouch(i, write: true)   // read I/O fills the frame
    }

    /// D1 `unlock_page` after read I/O: up to date, unlocked, `MV(1)` — the main to-volatile site.
    func unlockPage(_ i: Int, _ p: InferencePolicy) {
        model.fp[i].flags.remove(.unlockPending)
        guard model.fp[i].flags.contains(.locked) else { return }
        begin(.D1, p)
        model.fp[i].flags.remove(.locked)
        model.fp[i].flags.insert(.uptodate)
        model.makeVolatile(i, offset: 1)
        check(i)
    }

    /// U1/W1: operations pending on a page happen at the first later event naming it.
    @inline(__always)
    func settle(_ i: Int) {
        let fl = model.fp[i].flags
        if fl.contains(.unlockPending) { unlockPage(i, .U1) }
        if fl.contains(.writebackPending) { endWriteback(i, .W1) }
    }

    /// `settle` on each page of folio `f`; nothing to do (and no batching to check) when no page has an
    /// operation pending.
    /// Returns whether the pages were settled in one batched step: the tails then hold the head's page state
    /// (as `uniformRun` compares it), follow it in pfn order and are off the guest LRU.
    @inline(__always) @discardableResult
    func settleFolio(_ f: FolioFrames) -> Bool {
        // An order-0 folio: its one page directly (no closure to call).
        if f.pages == 1 { settle(f.head); return false }
        let pending = FrameFlags([.unlockPending, .writebackPending]).rawValue
        if f.contiguous {
            if deferredCount > 0 && isDeferred(f.head) {   // of `f.pages` pages: the head's order
                // Deferred tails hold the head's page state, pending operations included.
                if model.fp[f.head].flags.rawValue & pending == 0 { return false }
                return eachPage(f) { settle($0) }
            }
            physical(f)
            var any: UInt32 = 0
            var p = UnsafePointer(model.fp + f.head)
            for _ in 0..<f.pages {
                any |= p.pointee.flags.rawValue
                p += 1
            }
            if any & pending == 0 { return false }
        }
        return eachPage(f) { settle($0) }
    }

    func onDelete(pfn: UInt64, order: Int, cpu: Int) {
        guard let head = model.frames.find(pfn), order >= 0, order <= 12 else { return }
        let n = 1 << order
        ownHead(head, pages: n)
        let hf = model.fp[head]
        if n > 1 && batching && hf.flags.contains(.inCache) && hf.indexLow != UInt32.max && deletableRun(head, n, x: hf.indexLow) {
            // The pages are cached at consecutive indices of one file: they leave the page cache as a run,
            // the rest is one batched step.
            model.w = UInt64(n)
            deletePage(head, cpu: cpu)
            model.w = 1
            if canDefer(head, n) { deferSpread(head, n, .keep, keysKnown: true) } else { spread(head, n, .keep) }
            model.cache.removeRun(file: hf.file, x: UInt64(hf.indexLow) + 1, frame: head + 1, n - 1)
            return
        }
        for k in 0..<n {
            guard let i = k == 0 ? head : model.frames.find(pfn + UInt64(k)) else { continue }
            touch(i)
            deletePage(i, cpu: cpu)
        }
    }

    /// B1 for one page leaving the page cache.
    func deletePage(_ i: Int, cpu: Int) {
        settle(i)
        if opts.a2a { stillInMapping(i) }   // truncate/invalidate and reclaim removal recheck the mapping
        begin(.B1)
        model.discardLockAcquire()   // A5: __remove_from_page_cache under the global discard lock
        // G06: TestSetPageDiscarded guarded by page_host_discards(), twice per removal.
        discardCheck(i, phdCount: 2)
        if model.fp[i].flags.contains(.discarded) {
            // An emulated discard already removed it: exactly the race PG_discarded exists for.
            model.rp.pointee.doubleRemovalSuppressed &+= model.w
            unbind(i)
            return
        }
        unbind(i)
        // The page cache's reference; never below 0 when the trace deletes a page again and again (16 bits).
        model.fp[i].refcount = max(0, model.fp[i].refcount - 1)
        if a1 { a1Put(i); begin(.B1) }
        model.essa(.getState)   // PD?: keep PG_discarded only if the host discarded the page meanwhile
        if model.hostDiscarded(i) { model.markDiscarded(i) }
        let c = cpuIndex(cpu)
        if perCPU[c].inReclaim || perCPU[c].isolated != nil { reclaimDeletes += model.w } else { otherDeletes += model.w }
        check(i)
    }

    // MARK: look-ups (C3, E2, C7, G-hooks)

    /// Each page of a range that the model has in its page cache.
    func cachedPages(_ k: CacheKey, last: UInt64, _ body: (Int) -> Void) {
        if last < k.index { return }
        guard let file = model.knownFile(dev: k.dev, ino: k.ino) else { return }   // no page of it cached
        let end = k.index + min(last - k.index, 1 << 20)
        var x = k.index
        // The next cached index is looked up after each page's step, which may change the page cache.
        while let (y, i) = model.cache.nextCached(file: file, from: x, through: end) {
            body(Int(i))
            if y == end { return }
            x = y + 1
        }
    }

    /// A guest access to a frame: a discarded (Vz) frame costs a discard fault and a reload.
    func access(_ i: Int) {
        if model.hostDiscarded(i) || model.fp[i].flags.contains(.latentFault) {
            model.rp.pointee.discardFaults &+= model.w
            model.pageDiscard(i)
            model.reload(i)
            begin(.D1, .U0)
            model.makeVolatile(i, offset: 1)
            return
        }
        model.hostTouch(i)
    }

    func onGetPages(_ k: CacheKey, last: UInt64) {
        if last < k.index { return }
        guard let file = model.knownFile(dev: k.dev, ino: k.ino) else { return }   // no page of it cached
        let n = min(last - k.index, 1 << 20)
        var d: UInt64 = 0
        let batch = batching
        // Set when `readRun` found no page cached past the run it was given: the range ends with that run.
        var noMore = false
        // The cached page `readRun` stopped at (not in its state): the next look-up's answer.
        var stoppedAt: (UInt64, Int32)? = nil
        while d <= n {
            // The next index that holds a page (what a look-up of each index in turn finds first).
            let found = stoppedAt ?? model.cache.nextCached(file: file, from: k.index + d, through: k.index + n)
            stoppedAt = nil
            guard let (x, i32) = found else { return }
            d = x - k.index
            let i = Int(i32)
            if deferredCount > 0 { own(i) }
            if batch && d < n && x < UInt64(UInt32.max) && model.fp[i].indexLow == UInt32(x) && model.fp[i].flags.contains(.inCache)
                && model.fp[i].file == file {
                // Pages that follow in the frames, in the file and in page state (the rest of a large folio, or
                // all of it): one batched step.
                // Pages past the first may be on a guest LRU (folios of their own): a read moves none of
                // them on it. The run holds no discarded page and the host evicts none of it, but settling
                // a pending unlock or writeback end under a host budget can make the head Vz; the reload
                // that follows unlinks and relinks the pages one by one, as the per-page steps do.
                // An isolated head may sit on a guest LRU (put back by an LRU insertion): its discard would
                // unlink it alone, so its tails must be off the LRU too (per page, each would be unlinked).
                let lruTails = !model.fp[i].flags.contains(.isolated)
                let r = readableRun(i, min(Int(min(n - d + 1, 1 << 12)), hostLimit(i)), x: x, lruTails: lruTails)
                if r >= 1 && model.budgetFrames == Int.max && d + UInt64(r) <= n && model.cache.pageCount(file: file) > r {
                    // Without a host budget, the folios that follow in the range may join the step too.
                    let t = readRun(i, r, file: file, x: x, through: k.index + n, lruTails: lruTails)
                    if t.pages > r {
                        let before = pageState(i)
                        let head: Frame? = deferredCount > 0 && isDeferred(i) ? model.fp[i] : nil   // before the step (`spreadRead`)
                        model.w = UInt64(t.pages)
                        getPage(i)
                        model.w = 1
                        if pageState(i) == before {
                            batchedPages &+= UInt64(t.pages)
                        } else {
                            spreadRead(i, r, before: head)
                            for s in 1..<t.segments { spreadReadTo(i, Int(runSegments[2 * s]), Int(runSegments[2 * s + 1])) }
                            batchedPages &+= UInt64(t.pages - r)
                        }
                        if t.done { return }
                        d = t.last + 1 - k.index
                        stoppedAt = t.next
                        continue
                    }
                    noMore = t.done
                    stoppedAt = t.next
                }
                if r > 1 {
                    // A read mostly leaves the page as it found it (V → S → V, a reference taken and given
                    // back): then the tails, which held the head's state, hold it still, and copying it to
                    // them (`spread`) would write what is there.
                    let before = pageState(i)
                    let head: Frame? = deferredCount > 0 && isDeferred(i) ? model.fp[i] : nil
                    model.w = UInt64(r)
                    getPage(i)
                    model.w = 1
                    if pageState(i) == before { batchedPages &+= UInt64(r) } else { spreadRead(i, r, before: head) }
                    if noMore { return }
                    d += UInt64(r)
                    continue
                }
            }
            if deferredCount > 0 { touch(i) }
            getPage(i)
            if noMore { return }
            d += 1
        }
    }

    /// Segments of the last `readRun`: frame and page count, two words each (the first is the head's own).
    var runSegments = UnsafeMutablePointer<Int32>.allocate(capacity: 64)
    var runSegmentsCapacity = 32

    /// A read's batched step across folios (no host budget): the `r` pages from frame `i` (at index `x`,
    /// `uniformRun`), then each next cached page of the range (to index `through`) that holds `i`'s page
    /// state as `uniformRun` compares it — a folio head, an order-0 page, or pages of a folio the range
    /// enters mid-way — with the pages that follow it in its frames and its file. Per page, the read steps
    /// of those pages would each see what `i`'s sees: the step is one with the weight of them all. Pages
    /// the range names but the page cache does not hold are passed over, as the per-page look-up passes
    /// them. Returns the pages taken, the segments (`runSegments`), the last index taken, the cached page
    /// the run stopped at (another state) if any, and whether the range holds no cached page past the run.
    /// A read step changes no page-cache entry without a host budget: the look-up that follows the step
    /// would find the same.
    func readRun(_ i: Int, _ r: Int, file: UInt32, x: UInt64, through end: UInt64, lruTails: Bool)
        -> (pages: Int, segments: Int, last: UInt64, next: (UInt64, Int32)?, done: Bool) {
        runSegments[0] = Int32(truncatingIfNeeded: i)
        runSegments[1] = Int32(truncatingIfNeeded: r)
        var pages = r, segments = 1
        var last = x + UInt64(r) - 1
        let (want, counts) = pageState(i)
        let fp = model.fp
        while last < end && pages < 1 << 16 {
            guard let (y, j32) = model.cache.nextCached(file: file, from: last + 1, through: end) else {
                return (pages, segments, last, nil, true)
            }
            let j = Int(j32)
            if deferredCount > 0 { own(j) }
            let f = fp + j
            guard y < UInt64(UInt32.max) - (1 << 12), f.pointee.indexLow == UInt32(y), f.pointee.file == file,
                  f.pointee.flags.rawValue & Self.stateFlagMask == want,
                  UnsafeRawPointer(f).loadUnaligned(fromByteOffset: countsOffset, as: UInt64.self) & Self.countsMask == counts,
                  lruTails || f.pointee.lru == 255
            else { return (pages, segments, last, (y, j32), false) }
            // Its pages that follow, as `uniformRun` takes them (it compares them with `j`, which holds `i`'s state).
            // A page whose next frame is not the next pfn's (an order-0 page, mostly) is a run of one.
            let rj = j + 1 < model.frames.count && fp[j + 1].pfnLow != f.pointee.pfnLow &+ 1 ? 1
                : max(1, readableRun(j, Int(min(end - y + 1, 1 << 12)), x: y, lruTails: lruTails))
            if segments == runSegmentsCapacity {
                let bigger = UnsafeMutablePointer<Int32>.allocate(capacity: 4 * runSegmentsCapacity)
                bigger.update(from: runSegments, count: 2 * segments)
                runSegments.deallocate()
                runSegments = bigger
                runSegmentsCapacity *= 2
            }
            runSegments[2 * segments] = Int32(truncatingIfNeeded: j)
            runSegments[2 * segments + 1] = Int32(truncatingIfNeeded: rj)
            segments += 1
            pages += rj
            last = y + UInt64(rj) - 1
        }
        return (pages, segments, last, nil, last >= end)
    }

    /// One page of a read: C3 look-up and reference, the reader's release (R0).
    func getPage(_ i: Int) {
        let hadToLock = model.fp[i].flags.contains(.unlockPending) || model.fp[i].flags.contains(.locked)
        settle(i)
        // A2a: the read path locks a page that is not up to date, then rechecks its mapping.
        if opts.a2a && hadToLock { stillInMapping(i) }
        if a1 {
            model.fp[i].refcount += 1
            a1Get(i)
            model.hostTouch(i)
            model.fp[i].refcount -= 1
            a1Put(i)
            return
        }
        // C3: find_get_pages takes a reference and makes the page stable.
        begin(.C3)
        model.fp[i].refcount += 1
        if makeStableOrReload(i) { model.hostTouch(i) }
        // R0: the reader copies and releases its reference — E2 MV(2) (G07/G09), E1 MV(1) (G06/H05b).
        if series >= .g07 {
            begin(.E2, .R0)
            model.makeVolatile(i, offset: 2)
        } else {
            begin(.E1, .R0)
            model.fp[i].refcount -= 1
            model.makeVolatile(i, offset: 1)
            model.fp[i].refcount += 1
        }
        model.fp[i].refcount -= 1
        check(i)
    }

    func onMapPages(_ k: CacheKey, last: UInt64, pid: Int32) {
        cachedPages(k, last: last) { i in
            touch(i)
            settle(i)
            let fl = model.fp[i].flags
            guard fl.contains(.uptodate) && !fl.contains(.locked) else { return }
            if mappings.contains(pid, Int32(i)) { return }
            if opts.minorFaultOptimization {
                // Nodiscard look-up, no state change; the pte is not installed on a PG_discarded page.
                begin(.G6)
                pteCheck(i)
                if fl.contains(.discarded) { model.rp.pointee.pteSkipped &+= model.w; return }
            } else {
                // A10: the base patch's make_stable at look-up and make_volatile after the rmap add.
                begin(.C1)
                model.fp[i].refcount += 1
                makeStableOrReload(i)
                model.fp[i].refcount -= 1
            }
            if a1 { a1Get(i) }
            mapPage(i, pid: pid)
            if !opts.minorFaultOptimization {
                begin(.F1)
                model.makeVolatile(i, offset: 1)
            }
            if model.hostDiscarded(i) {
                // The new pte points to a discarded frame: it faults on the next access (T0) or now (T1).
                if opts.touches == .T1 {
                    begin(.host, .T1)
                    access(i)
                } else {
                    model.fp[i].flags.insert(.latentFault)
                }
            }
            check(i)
        }
    }

    func onFault(_ k: CacheKey, pid: Int32) {
        // Major fault (no page): the add + read follow.
        guard let file = model.knownFile(dev: k.dev, ino: k.ino), let i32 = model.cache[file: file, index: k.index] else { return }
        let i = Int(i32)
        touch(i)
        settle(i)
        let write = faultWrite(pid: pid)
        // C7: nodiscard locked look-up on the fault path: no state change.
        begin(.C7)
        if opts.a2a { stillInMapping(i) }   // filemap_fault rechecks the mapping after locking the page
        if a1 { a1Get(i); a1Put(i) }
        if write {
            // Private write fault (COW): G6 make_stable of the page copied from; failure → discard, retry.
            begin(.G6)
            model.fp[i].refcount += 1
            if makeStableOrReload(i) { access(i) }
            model.fp[i].refcount -= 1
            check(i)
            return
        }
        begin(.G6)
        pteCheck(i)
        if model.fp[i].flags.contains(.discarded) { model.rp.pointee.pteSkipped &+= model.w; return }
        access(i)
        mapPage(i, pid: pid)
        check(i)
    }

    /// The "install the pte only if not PG_discarded" check of the fault paths: G06-7 open-codes
    /// page_host_discards() there (do_no_page, do_swap_page back-outs); G07/G09 test the flag.
    func pteCheck(_ i: Int) {
        discardCheck(i)
    }

    /// An open-coded discard check: G06 evaluates page_host_discards() `phdCount` times at the site,
    /// G07/G09 test PG_discarded (or what replaces it: A4's seqlock, A5's nothing). `guards`: the check
    /// stops a removal, LRU re-add or pte establishment (A5 counts a violation when it would have).
    @inline(__always)
    func discardCheck(_ i: Int, phdCount: Int = 1, guards: Bool = true) {
        if series == .g06 {
            for _ in 0..<phdCount { model.phd() }
        } else if series >= .g07 {
            model.discardTest(i, guards: guards)
        }
    }

    // MARK: alternatives A2a, A3a (spec §7.2)

    /// A2a: `page_still_in_mapping()` — the mapping recheck after locking a page plus a PG_discarded test.
    func stillInMapping(_ i: Int) {
        begin(.stillInMapping)
        model.rp.pointee.stillInMappingTests &+= model.w
        if model.discardTest(i, guards: false) { model.rp.pointee.stillInMappingHits &+= model.w }
    }

    /// A3a: one `lru_to_page()` step with its discard check, on a frame the model knows (-1: a page the
    /// trace counts but does not name).
    func lruToPageStep(_ i: Int, steps: Int = 1) {
        begin(.lruToPage)
        model.rp.pointee.lruToPageTests &+= UInt64(steps) &* model.w
        if i >= 0 {
            if model.discardTest(i) { model.rp.pointee.lruToPageHits &+= model.w }
        } else {
            model.rp.pointee.flagTests &+= UInt64(steps) &* model.w
        }
    }

    // MARK: LRU (B4, E1)

    func onLRUInsertion(pfn: UInt64, lru: Int, flags: Int64) {
        let head = model.frame(pfn)
        let range = ownFolio(head)
        if range.pages == 1 {
            // An order-0 folio: its one page, directly (no folio bookkeeping, no closure to call).
            settle(head)
            if insertionFlags(head, flags: flags).suppressed {
                model.rp.pointee.lruReaddSuppressed &+= model.w
                return
            }
            model.linkGuestLRU(head, list: lru)
            lruBatchReleased(head)
            return
        }
        let settled = settleFolio(range)
        let before = settled ? pageState(head) : (flags: 0, counts: 0)
        // Deferred tails hold the head's state as it is before the insertion's flags: what they take if the
        // step below is not batched.
        let snapshot: Frame? = deferredCount > 0 && isDeferred(head) ? model.fp[head] : nil
        // The tails take the head's anon, swap-cache, buffer and up-to-date flags, and `lru` when it is
        // linked (in one pass: the discard check reads the head alone).
        let (fl, suppressed) = insertionFlags(head, flags: flags)
        // A folio settled in one batched step, not suppressed: its tails, which held the head's page state,
        // would take the flags below and then the head's step, one each; when those flags are what the
        // head holds after its linking, the tails hold the head's state again, and the step is batched
        // without a pass to set them or to compare them (`spread` sets them all after the step).
        let add = fl.intersection([.anon, .swapCache, .privateData, .uptodate]).union(suppressed ? [] : .lru)
        let drop: FrameFlags = fl.contains(.anon) ? [] : .anon
        let uniform = settled && !suppressed
        if !uniform {
            if let snapshot { materialize(head, from: snapshot) }
            tailFlags(range, add: add, drop: drop)
        }
        if suppressed {
            model.rp.pointee.lruReaddSuppressed &+= model.w
            return
        }
        model.linkGuestLRU(head, list: lru)
        if uniform {
            let now = pageState(head)
            let tails = (before.flags & ~drop.rawValue | add.rawValue) & Self.stateFlagMask
            if now.counts == before.counts && now.flags == tails && headBatchable(head) && hostAllows(head, range.pages) {
                model.w = UInt64(range.pages)
                lruBatchReleased(head)
                model.w = 1
                if canDefer(head, range.pages) { deferSpread(head, range.pages, .keep) } else { spread(head, range.pages, .keep) }
                return
            }
            // Not the head's state: the tails take the flags, then a step each (as without the batched settle).
            if let snapshot { materialize(head, from: snapshot) }
            tailFlags(range, add: add, drop: drop)
        }
        eachPage(range) { lruBatchReleased($0) }
    }

    /// The tails of folio `range` take flags `add` and lose `drop`.
    @inline(__always)
    func tailFlags(_ range: FolioFrames, add: FrameFlags, drop: FrameFlags) {
        if range.contiguous {
            var t = model.fp + (range.head + 1)
            for _ in 1..<range.pages {
                t.pointee.flags = FrameFlags(rawValue: t.pointee.flags.rawValue & ~drop.rawValue | add.rawValue)
                t += 1
            }
        } else {
            for i in range where i != range.head { model.fp[i].flags = model.fp[i].flags.subtracting(drop).union(add) }
        }
    }

    /// B4 on the head of a folio an LRU insertion names: its flags from the event's, the A3a step, and
    /// under G09 the discard check (a discarded folio is not put back: `suppressed`).
    @inline(__always)
    func insertionFlags(_ head: Int, flags: Int64) -> (fl: FrameFlags, suppressed: Bool) {
        var fl = model.fp[head].flags
        // Anonymous memory is up to date from its first fault.
        if flags & 0x2 != 0 { fl.insert([.anon, .uptodate]) } else { fl.remove(.anon) }
        if flags & 0x8 != 0 { fl.insert(.swapCache) } else { fl.remove(.swapCache) }
        if flags & 0x40 != 0 { fl.insert(.privateData) } else { fl.remove(.privateData) }
        model.fp[head].flags = fl
        if opts.a3a { lruToPageStep(head) }
        var suppressed = false
        if series == .g09 {
            begin(.B4)
            discardCheck(head)
            suppressed = fl.contains(.discarded)
        }
        return (fl, suppressed)
    }

    /// The LRU add batch drops the reference it held on page `i` (B4 `MV(2)` on G07/G09).
    @inline(__always)
    func lruBatchReleased(_ i: Int) {
        if a1 {
            model.fp[i].refcount -= 1
            a1Put(i)
        } else if series >= .g07 {
            begin(.B4)
            model.makeVolatile(i, offset: 2)
            model.fp[i].refcount -= 1
        } else {
            // G06/H05b: no LRU-add hook; the batch's put_page_testzero is an E1 MV(1) attempt.
            model.fp[i].refcount -= 1
            begin(.E1, .R0)
            model.makeVolatile(i, offset: 1)
        }
        if model.fp[i].refcount < 1 { model.fp[i].refcount = 1 }
        check(i)
    }

    func onLRUActivate(pfn: UInt64) {
        guard let head = model.frames.find(pfn) else { return }
        let range = ownFolio(head)
        if range.pages == 1 && !a1 && !opts.a3a {
            // An order-0 folio: its one page directly.
            settle(head)
            if model.fp[head].flags.contains(.lru) {
                let l = Int(model.fp[head].lru)
                model.linkGuestLRU(head, list: l == 0 || l == 1 ? 1 : 3)
            }
            model.fp[head].flags.insert(.active)
            access(head)
            return
        }
        settleFolio(range)
        if model.fp[head].flags.contains(.lru) {
            let l = Int(model.fp[head].lru)
            model.linkGuestLRU(head, list: l == 0 || l == 1 ? 1 : 3)
        }
        let deferred = deferredCount > 0 && range.pages > 1 && isDeferred(head)
        if deferred {
            // Every page's own `active` flag is set: deferred tails take theirs here, and a pending drop of
            // it is superseded.
            model.fp[head].flags.remove(.deferDropActive)
        } else {
            physical(range)
        }
        eachFrame(range) { $0.pointee.flags.insert(.active) }
        if opts.a3a { lruToPageStep(head) }
        // A1: folio_activate() takes a reference for its batch and drops it after the move (this event).
        if a1 { for i in range { a1Get(i); a1Put(i) } }
        if deferred {
            // The access is the head's alone: if it changes the head's page state, the tails keep the
            // state they held.
            let before = model.fp[head]
            access(head)
            if pageState(head) != withUnsafePointer(to: before, { pageState(of: $0) }) { materialize(head, from: before) }
        } else {
            access(head)
        }
    }

    // MARK: reclaim (H1–H4, A6)

    /// A frame reclaim takes off its LRU list: isolated, with the reference isolation holds.
    @inline(__always)
    static func isolateFrame(_ f: UnsafeMutablePointer<Frame>) {
        f.pointee.flags = FrameFlags(rawValue: f.pointee.flags.rawValue & ~FrameFlags.lru.rawValue | FrameFlags.isolated.rawValue)
        f.pointee.refcount += 1
    }

    func onIsolate(cpu: Int, taken: Int, scanned: Int, lru: Int) {
        guard lru >= 0 && lru < 5 else { return }
        var got = 0
        let c = cpuIndex(cpu)
        var list: [Int32] = perCPU[c].isolated ?? []
        if list.capacity == 0 { swap(&list, &spareIsolated) }   // the last put-back's, emptied
        var folios = 0
        while got < taken, model.guestLRU[lru].tail >= 0 {
            let i = Int(model.guestLRU[lru].tail)
            model.unlinkGuestLRU(i)
            if opts.a3a { lruToPageStep(i) }
            if a1 || opts.a3c {
                for p in folio(i) {
                    model.fp[p].flags.remove(.lru)
                    model.fp[p].flags.insert(.isolated)
                    model.fp[p].refcount += 1
                    if a1 { a1Get(p) }
                    if opts.a3c { a3cMakeStable(p) }
                }
            } else if model.fp[i].order == 0 {
                Self.isolateFrame(model.fp + i)   // an order-0 folio: its one page directly
            } else {
                eachFolioFrame(folio(i), Self.isolateFrame)
            }
            list.append(Int32(i))
            got += folio(i).pages
            folios += 1
        }
        // A3a: the pages scanned but not taken (skipped) are lru_to_page steps too; the trace does not name them.
        if opts.a3a && scanned > got { lruToPageStep(-1, steps: scanned - got) }
        if got < taken { model.note("isolation of pages the model had not on its LRU", UInt64(taken - got)) }
        perCPU[c].isolated = list
        perCPU[c].isolatedFrom = lru
    }

    /// A3c: a page taken off an LRU is made stable; a page the host discarded meanwhile is removed.
    func a3cMakeStable(_ p: Int) {
        begin(.isolateStable)
        if !model.makeStable(p) {
            model.rp.pointee.syncDiscards &+= model.w
            model.pageDiscard(p)
        }
        check(p)
    }

    /// A3c: a page put back on an LRU may become volatile again.
    func a3cMakeVolatile(_ p: Int) {
        begin(.putbackVolatile)
        model.makeVolatile(p, offset: 1)
        check(p)
    }

    /// `toActive`: the event's nr_activate[0] + nr_activate[1] (counts from the trace: never trap on them).
    func onShrinkInactive(cpu: Int, toActive activated: Int, priority: Int64) {
        let c = cpuIndex(cpu)
        var list = perCPU[c].isolated ?? []
        perCPU[c].isolated = nil
        perCPU[c].isolatedFrom = -1
        defer {
            // Its storage serves the next isolation (one list an isolation-put-back pair, not an allocation).
            list.removeAll(keepingCapacity: true)
            spareIsolated = list
        }
        var toActive = activated
        for i32 in list {
            let i = Int(i32)
            own(i)
            guard model.fp[i].flags.contains(.isolated) && model.fp[i].flags.contains(.allocated) else { continue }
            if opts.a3a {
                // A3a: the put-back loop's lru_to_page() checks; the H1 check is gone.
                lruToPageStep(i)
            } else {
                // H1: the bulk put-back (move_folios_to_lru) skips PG_discarded pages (untraced: inferred).
                begin(.H1, .lruPutback)
                discardCheck(i)
            }
            let range = folio(i)
            if a1 {
                for p in range {
                    model.fp[p].flags.remove(.isolated)
                    model.fp[p].refcount -= 1
                    a1Put(p)
                }
            } else {
                eachFolioFrame(range) { f in
                    f.pointee.flags.remove(.isolated)
                    f.pointee.refcount -= 1
                }
            }
            if model.fp[i].flags.contains(.discarded) {
                if series == .g09 { begin(.H4, .lruPutback) }   // G09: straight to free
                continue
            }
            let file = !model.fp[i].flags.contains(.anon)
            if toActive > 0 {
                model.linkGuestLRU(i, list: file ? 3 : 1)
                toActive -= range.pages
            } else {
                model.linkGuestLRU(i, list: file ? 2 : 0)
            }
            eachFolioFrame(range, tailsOnly: true) { f in f.pointee.flags.insert(.lru) }
            if opts.a3c { for p in range { a3cMakeVolatile(p) } }
        }
        if perCPU[c].inReclaim, series <= .g06, let last = perCPU[c].reclaimPriority, priority < last {
            flushDiscardList()   // G06/H05b: every direct reclaim priority pass flushes the discard list
        }
        perCPU[c].reclaimPriority = priority
    }

    func onShrinkActive(cpu: Int, taken: Int, deactivated: Int, file: Bool) {
        let active = file ? 3 : 1, inactive = file ? 2 : 0
        var moved: [Int] = []
        var stay: [Int] = []
        var got = 0
        let c = cpuIndex(cpu)
        if perCPU[c].isolatedFrom == active, let list = perCPU[c].isolated {
            // The pages were taken by the mm_vmscan_lru_isolate event of this shrink_active_list pass.
            perCPU[c].isolated = nil
            perCPU[c].isolatedFrom = -1
            for i32 in list {
                let i = Int(i32)
                guard model.fp[i].flags.contains(.isolated) else { continue }
                eachFrame(folio(i)) { f in f.pointee.flags.remove(.isolated); f.pointee.refcount -= 1 }
                if got < deactivated { moved.append(i) } else { stay.append(i) }
                got += folio(i).pages
            }
        } else {
            while got < taken, model.guestLRU[active].tail >= 0 {
                let i = Int(model.guestLRU[active].tail)
                model.unlinkGuestLRU(i)
                if opts.a3a { lruToPageStep(i) }
                if opts.a3c { for p in folio(i) { a3cMakeStable(p) } }
                if got < deactivated { moved.append(i) } else { stay.append(i) }
                got += folio(i).pages
            }
        }
        var pages: [Int] = []
        for i in moved {
            if opts.a3a { lruToPageStep(i) } else {
                begin(.H2, .lruPutback)
                if series == .g06 { model.phd(); model.discardTest(i) }
            }
            if model.fp[i].flags.contains(.discarded) { continue }
            model.linkGuestLRU(i, list: inactive)
            for p in folio(i) {
                model.fp[p].flags.insert(.lru)
                model.fp[p].flags.remove(.active)
                // G07/G09: max_buffer_heads = 0 strips buffer heads on every deactivation.
                if series >= .g07 { model.fp[p].flags.remove(.privateData) }
                pages.append(p)
            }
        }
        if series >= .g07 && !pages.isEmpty {
            begin(.H2, .lruPutback)
            model.pagevecMakeVolatile(pages)
        }
        for i in stay {
            if opts.a3a { lruToPageStep(i) } else {
                begin(.H3, .lruPutback)
                if series == .g06 { model.phd(); model.discardTest(i) }
            }
            if model.fp[i].flags.contains(.discarded) { continue }
            model.linkGuestLRU(i, list: active)
            eachFrame(folio(i), tailsOnly: true) { $0.pointee.flags.insert(.lru) }
            if opts.a3c { for p in folio(i) { a3cMakeVolatile(p) } }
        }
    }

    func onReclaimBegin(cpu: Int, direct: Bool) {
        let c = cpuIndex(cpu)
        perCPU[c].inReclaim = true
        perCPU[c].reclaimPriority = nil
        if direct && series <= .g06 && !model.discardList.isEmpty { flushDiscardList() }
    }

    // MARK: writeback (D2, D3, C2)

    func onWriteFolio(pfn: UInt64) {
        guard let head = model.frames.find(pfn) else { return }
        let range = ownFolio(head)
        eachPage(range) { i in
            settle(i)
            model.fp[i].flags.remove([.dirty, .hwDirty])
            model.fp[i].flags.insert(.writeback)
            if series <= .g06 {
                // D2 at the dirty-clear point: MV(1) (H05b) / MV(2) (G06) — fails: under writeback now.
                begin(.D2)
                model.makeVolatile(i, offset: series == .g06 ? 2 : 1)
            }
            if a1 { a1Get(i); a1Put(i) }
            // The device reads the frame: host work of the event (its host row, as evictions), not of
            // whichever hook ran before.
            model.hostWork { model.hostTouch(i) }
            if opts.writeback == .W0 { endWriteback(i, .W0) } else { model.fp[i].flags.insert(.writebackPending) }
        }
    }

    /// D3 `test_clear_page_writeback`: MV(1) (G07/G09), MV(2) (G06); H05b has no D3.
    func endWriteback(_ i: Int, _ p: InferencePolicy) {
        model.fp[i].flags.remove([.writeback, .writebackPending])
        if series == .h05b { return }
        begin(.D3, p)
        model.makeVolatile(i, offset: series == .g06 ? 2 : 1)
        check(i)
    }

    func onWaitWriteback(ino: UInt64, index: UInt64) {
        guard let i32 = model.cached(ino: ino, index: index) else { return }
        let i = Int(i32)
        touch(i)
        if model.fp[i].flags.contains(.writebackPending) { endWriteback(i, .W1) }
    }

    func onDirty(ino: UInt64, index: UInt64) {
        guard let i32 = model.cached(ino: ino, index: index) else { return }
        let i = Int(i32)
        touch(i)
        settle(i)
        let g = model.fp[i].guest
        if opts.a2a { stillInMapping(i) }   // write_begin locks the page and rechecks its mapping
        if a1 {
            a1Get(i)
            model.fp[i].flags.insert(.dirty)
            a1Put(i)
            access(i)
            check(i)
            return
        }
        if g == .potentiallyVolatile && model.fp[i].flags.contains(.writable) {
            // Dirtied through a writable pte: the host sees the change bit; no transition.
            model.fp[i].flags.insert(.hwDirty)
        } else if g == .volatile || g == .potentiallyVolatile {
            // A page is made stable before it is dirtied: write(2) → write_begin look-up (C2).
            begin(.C2, .writeBegin)
            model.fp[i].refcount += 1
            makeStableOrReload(i)
            model.fp[i].refcount -= 1
        }
        model.fp[i].flags.insert(.dirty)
        access(i)
        check(i)
    }

    // MARK: processes (M0, F4, F13)

    func onFork(parent: Int32, child: Int32) {
        let m = mappings.frames(of: parent)
        guard !m.isEmpty else { return }
        begin(.F13, .M0)
        for i32 in m {
            let i = Int(i32)
            touch(i)
            model.discardTest(i)
            if model.fp[i].flags.contains(.discarded) { continue }   // the racing discard leaves no pte
            mapPage(i, pid: child)
        }
    }

    /// The rmap add of a pte of process `pid` on page `i`: a mapping and a reference, unless `pid` maps it
    /// already (then nothing: `onExit` gives back one per process). The frame keeps its counts in 16 bits:
    /// as `try_get_page()` refuses a reference that would bring a page's count close to overflow, the model
    /// takes no mapping past `mappingLimit` references or mappings (a page mapped by more than 31,743
    /// processes at once, or by the children of forks whose exits the trace lacks) and notes each one left
    /// out. Its other references are few: the page cache's, the LRU batch's, isolation's, a step's own.
    @inline(__always)
    func mapPage(_ i: Int, pid: Int32) {
        let f = model.fp + i
        if f.pointee.refcount < Self.mappingLimit && f.pointee.mapcount < Self.mappingLimit {
            if mappings.insert(pid, Int32(i)) {
                f.pointee.mapcount += 1
                f.pointee.refcount += 1
            }
        } else {
            mappingLeftOut(i, pid: pid)
        }
    }

    /// `mapPage` at the limit: notes the mapping left out, unless `pid` maps the page already.
    @inline(never)
    func mappingLeftOut(_ i: Int, pid: Int32) {
        if !mappings.contains(pid, Int32(i)) { model.note("mappings of a page past \(Self.mappingLimit) references, not tracked") }
    }
    static let mappingLimit = Int16.max - 1024

    func onExit(pid: Int32) {
        for i32 in mappings.removeAll(of: pid) {
            let i = Int(i32)
            touch(i)
            guard model.fp[i].mapcount > 0 else { continue }
            model.fp[i].mapcount -= 1
            model.fp[i].refcount = max(0, model.fp[i].refcount - 1)
            if a1 && model.fp[i].refcount > 0 { a1Put(i) }
            if model.fp[i].mapcount == 0 {
                begin(.F4, .M0)
                model.resetWritable(i)
                model.fp[i].flags.remove(.latentFault)
            }
        }
    }
}

/// The frames each process has a pte to (M0: dropped at process exit), in mapping order: per process a
/// list and a set of frame indices, so an exit drops a process's mappings without touching any other's.
/// The last process looked up is remembered (its faults and map events come in runs).
struct Mappings {
    private var slotOf = FastMap<UInt64, Int32>(emptyKey: 0, emptyValue: -1, capacity: 256)
    /// The processes' mappings, `processCount` slots of `processCapacity`; a slot in `freeSlots` holds
    /// nothing (its buffers were given back). Kept in a buffer of their own: an array of them checked its
    /// uniqueness on every mapping.
    private var processes: UnsafeMutablePointer<ProcessMappings>? = nil
    private var processCount = 0
    private var processCapacity = 0
    private var freeSlots: [Int32] = []
    private var lastPid: Int32 = 0
    private var lastSlot: Int32 = -1
    /// The last `contains` that found no mapping in a process that has some: where the frame would go
    /// (process slot, frame, set slot), so that the `insert` that follows it does not probe again. Any
    /// change to the sets forgets it.
    private var miss: (slot: Int32, frame: Int32, at: Int) = (-1, 0, 0)
    /// Bytes the processes' lists and sets hold, and the most they held at once.
    private(set) var bytes = 0
    private(set) var peakBytes = 0

    /// A process's mappings: frames in mapping order (`order`, `count` of `capacity`, doubling) and the
    /// set of them, in buffers of their own, given back by `release` (a value kept in place in
    /// `processes`: a class there cost a retain and a release per mapping). Mutate it only in place
    /// (`processes[s].insert`): a copy that grows frees the buffers the slot still points to.
    /// The set is an open-addressing table (`frame + 1`, 0 empty, at most half full) while that is the
    /// smaller; a process that maps a large share of the frames (one that maps a whole file) has a bitmap
    /// by frame index instead, when the table would outgrow it (`bitmapWords > 0`): a process mapping
    /// 16,100 of 16,765 frames holds a 2 KiB bitmap, not a table of 128 KiB. A frame past the bitmap
    /// that would make it larger than a table of the frames mapped turns it back into that table (a
    /// process that mapped a few low frames, then one far above them).
    struct ProcessMappings {
        var order: UnsafeMutablePointer<Int32>
        var count = 0
        var capacity = 16
        var set: UnsafeMutablePointer<UInt32>
        var mask: Int
        /// Words of the bitmap `set` is, 0 while it is a table.
        var bitmapWords = 0
        init() {
            mask = 15
            set = .allocate(capacity: 16)
            set.initialize(repeating: 0, count: 16)
            order = .allocate(capacity: capacity)
        }
        func release() {
            set.deallocate()
            order.deallocate()
        }

        /// The frames in mapping order.
        var frames: [Int32] { Array(UnsafeBufferPointer(start: order, count: count)) }

        /// Bytes held: the set's slots or words, and the list's capacity.
        var bytes: Int {
            (bitmapWords > 0 ? bitmapWords : mask + 1) * MemoryLayout<UInt32>.stride + capacity * MemoryLayout<Int32>.stride
        }

        @inline(__always)
        func home(_ f: UInt32) -> Int { Int(truncatingIfNeeded: (UInt64(f) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask }

        /// The slot of `frame` in the set: -1 when it is there, else the empty slot where it would go (0
        /// for a bitmap).
        @inline(__always)
        func vacancy(_ frame: Int32) -> Int {
            if bitmapWords > 0 {
                let w = Int(frame >> 5)
                return w < bitmapWords && set[w] & (1 << UInt32(frame & 31)) != 0 ? -1 : 0
            }
            let v = UInt32(bitPattern: frame) &+ 1
            var s = home(v)
            while true {
                let e = set[s]
                if e == v { return -1 }
                if e == 0 { return s }
                s = (s + 1) & mask
            }
        }

        @inline(__always)
        func contains(_ frame: Int32) -> Bool { vacancy(frame) < 0 }

        /// Adds `frame` (false when it was there), and the bytes that took.
        mutating func insert(_ frame: Int32) -> (Bool, bytes: Int) {
            let s = vacancy(frame)
            if s < 0 { return (false, 0) }
            return (true, insert(frame, at: s))
        }

        /// Adds `frame`, not in the set, at its empty slot `s` (`vacancy`); returns the bytes that took
        /// (0 unless the list or the set grew; negative when a table became a smaller bitmap).
        @inline(__always)
        mutating func insert(_ frame: Int32, at s: Int) -> Int {
            var added = 0
            if bitmapWords > 0 {
                let w = Int(frame >> 5)
                if w >= bitmapWords {
                    // A frame past the bitmap: it grows, or when a table of the frames mapped would be
                    // smaller (a few frames far apart), the set becomes that table again.
                    let words = max(w + 1, bitmapWords + bitmapWords / 2)
                    var slots = 16
                    while slots < 2 * (count + 1) { slots *= 2 }
                    let before = bitmapWords
                    if words > slots {
                        toTable(slots)
                        set[vacancy(frame)] = UInt32(bitPattern: frame) &+ 1
                        added &+= (slots &- before) &* MemoryLayout<UInt32>.stride
                    } else {
                        growBitmap(words)
                        set[w] |= 1 << UInt32(frame & 31)
                        added &+= (bitmapWords &- before) &* MemoryLayout<UInt32>.stride
                    }
                } else {
                    set[w] |= 1 << UInt32(frame & 31)
                }
            } else {
                set[s] = UInt32(bitPattern: frame) &+ 1
            }
            if count == capacity {
                regrow(&order, count: count, capacity: capacity * 2)
                added &+= capacity &* MemoryLayout<Int32>.stride
                capacity *= 2
            }
            order[count] = frame
            count &+= 1
            if bitmapWords == 0 && count &* 2 > mask &+ 1 {
                let before = mask &+ 1
                grow()
                added &+= ((bitmapWords > 0 ? bitmapWords : mask &+ 1) &- before) &* MemoryLayout<UInt32>.stride
            }
            return added
        }

        /// The table doubles, or becomes a bitmap of the frames mapped when that is no larger.
        private mutating func grow() {
            let old = set, n = mask + 1
            var top: Int32 = 0
            for k in 0..<count where order[k] > top { top = order[k] }
            let words = Int(top >> 5) + 1
            if words <= n * 2 {
                set = .allocate(capacity: words)
                set.initialize(repeating: 0, count: words)
                for k in 0..<count { set[Int(order[k] >> 5)] |= 1 << UInt32(order[k] & 31) }
                bitmapWords = words
                old.deallocate()
                return
            }
            mask = n * 2 - 1
            set = .allocate(capacity: n * 2)
            set.initialize(repeating: 0, count: n * 2)
            for j in 0..<n where old[j] != 0 {
                var s = home(old[j])
                while set[s] != 0 { s = (s + 1) & mask }
                set[s] = old[j]
            }
            old.deallocate()
        }

        /// The bitmap holds `n` words.
        private mutating func growBitmap(_ n: Int) {
            regrow(&set, count: bitmapWords, capacity: n)
            (set + bitmapWords).initialize(repeating: 0, count: n - bitmapWords)
            bitmapWords = n
        }

        /// The bitmap becomes a table of `slots` (a power of two, more than twice the frames mapped).
        private mutating func toTable(_ slots: Int) {
            let old = set
            set = .allocate(capacity: slots)
            set.initialize(repeating: 0, count: slots)
            mask = slots - 1
            bitmapWords = 0
            for k in 0..<count { set[vacancy(order[k])] = UInt32(bitPattern: order[k]) &+ 1 }
            old.deallocate()
        }
    }

    @inline(__always)
    private mutating func slot(_ pid: Int32, create: Bool) -> Int? {
        if lastSlot >= 0 && pid == lastPid { return Int(lastSlot) }
        let p = UInt64(UInt32(bitPattern: pid))
        var s = slotOf[p] ?? -1
        if s < 0 {
            guard create else { return nil }
            if let f = freeSlots.popLast() {
                s = f
            } else {
                if processCount == processCapacity {
                    processCapacity = max(16, processCapacity * 2)
                    if processes == nil { processes = .allocate(capacity: processCapacity) } else {
                        regrow(&processes!, count: processCount, capacity: processCapacity)
                    }
                }
                s = Int32(processCount)
                processCount += 1
            }
            (processes.unsafelyUnwrapped + Int(s)).initialize(to: ProcessMappings())
            slotOf.set(p, s)
            grew(processes.unsafelyUnwrapped[Int(s)].bytes)
        }
        lastPid = pid
        lastSlot = s
        return Int(s)
    }

    @inline(__always)
    mutating func contains(_ pid: Int32, _ frame: Int32) -> Bool {
        guard let s = slot(pid, create: false) else { return false }
        let at = processes.unsafelyUnwrapped[s].vacancy(frame)
        if at < 0 { return true }
        miss = (Int32(s), frame, at)
        return false
    }

    /// Maps `frame` in `pid`; whether it was not mapped there before.
    @discardableResult
    mutating func insert(_ pid: Int32, _ frame: Int32) -> Bool {
        let s = slot(pid, create: true)!
        let m = miss
        miss.slot = -1
        let pm = processes.unsafelyUnwrapped + s
        if m.slot == Int32(s) && m.frame == frame {
            let b = pm.pointee.insert(frame, at: m.at)
            if b != 0 { grew(b) }
            return true
        }
        let (added, b) = pm.pointee.insert(frame)
        if b != 0 { grew(b) }
        return added
    }

    @inline(__always)
    private mutating func grew(_ b: Int) {
        bytes += b
        if bytes > peakBytes { peakBytes = bytes }
    }

    mutating func frames(of pid: Int32) -> [Int32] {
        guard let s = slot(pid, create: false) else { return [] }
        return processes.unsafelyUnwrapped[s].frames
    }

    /// Removes every mapping of `pid` and returns its frames.
    mutating func removeAll(of pid: Int32) -> [Int32] {
        let p = UInt64(UInt32(bitPattern: pid))
        guard let s = slotOf[p] else { return [] }
        let pm = processes.unsafelyUnwrapped + Int(s)
        let out = pm.pointee.frames
        bytes -= pm.pointee.bytes
        pm.pointee.release()
        pm.deinitialize(count: 1)
        miss.slot = -1
        slotOf.remove(p)
        freeSlots.append(s)
        if lastPid == pid { lastSlot = -1 }
        return out
    }

    /// Gives back every process's set (the replay's end).
    mutating func release() {
        if let processes {
            let free = Set(freeSlots)
            for k in 0..<processCount where !free.contains(Int32(k)) { processes[k].release() }
            processes.deallocate()
        }
        let peak = peakBytes
        self = Mappings()   // empty: nothing points at a released set
        peakBytes = peak
    }
}

/// First pass for a relative host budget: the distinct frames the guest allocates or caches.
public struct TouchedFrames: EventSink {
    public private(set) var pfns = Set<UInt64>()
    var kinds: [Int8] = []   // per type: 0 other, 1 alloc/add (pfn + order), 2 pfn only
    var pfnField: [Int] = []
    var orderField: [Int] = []

    public init() {}

    public mutating func consume(_ e: borrowing Event, context ctx: TraceContext) {
        let t = Int(e.type)
        while kinds.count <= t {
            let et = ctx.types[kinds.count]
            let k: Int8
            // Every event naming a frame: with its order where it has one.
            if et.fieldIndex("pfn") == nil { k = 0 } else { k = et.fieldIndex("order") != nil ? 1 : 2 }
            kinds.append(k)
            pfnField.append(et.fieldIndex("pfn") ?? -1)
            orderField.append(et.fieldIndex("order") ?? -1)
        }
        // The replay skips pfns of 2^56 and above (`Replay.pageNumberLimit`); -1 is a failed allocation.
        guard kinds[t] != 0, let p = e.value(pfnField[t]), UInt64(bitPattern: p) < Replay.pageNumberLimit else { return }
        let order = kinds[t] == 1 ? Int(truncatingIfNeeded: e.value(orderField[t]) ?? 0) : 0
        if order < 0 || order > 12 { return }
        for k in 0..<(1 << order) { pfns.insert(UInt64(bitPattern: p) + UInt64(k)) }
    }
}

/// The frames of a folio's pages, in pfn order: a range of frames when they follow the head
/// (`FrameFlags.contiguous`), else found by pfn (pages the model never saw are left out). `pages` is the
/// folio's size.
struct FolioFrames: Sequence {
    let head: Int
    let pages: Int
    let contiguous: Bool
    unowned(unsafe) let replay: Replay

    struct Iterator: IteratorProtocol {
        let f: FolioFrames
        let pfn: UInt64
        var k = 0
        @inline(__always)
        mutating func next() -> Int? {
            while k < f.pages {
                let j = k
                k += 1
                if f.contiguous { return f.head + j }
                if j == 0 { return f.head }
                if let i = f.replay.model.frames.find(pfn + UInt64(j)) { return i }
            }
            return nil
        }
    }

    @inline(__always)
    func makeIterator() -> Iterator {
        Iterator(f: self, pfn: contiguous ? 0 : replay.model.frames.pfn(head))
    }
}

/// One bit per frame index, 0 past the words allocated (grown, zeroed, on the first bit set past them).
/// Released by its owner (`release`).
struct FrameBits {
    private(set) var words: UnsafeMutablePointer<UInt64> = .allocate(capacity: 16)
    private(set) var wordCount = 16

    init() { words.initialize(repeating: 0, count: wordCount) }

    func release() { words.deallocate() }

    /// Bytes held.
    var bytes: Int { wordCount * 8 }

    @inline(__always)
    func test(_ i: Int) -> Bool {
        let w = i &>> 6
        return w < wordCount && words[w] & (1 &<< UInt64(i & 63)) != 0
    }

    /// Words covering bits up to `i`.
    @inline(__always)
    mutating func reserve(_ i: Int) {
        if i &>> 6 >= wordCount { grow(i &>> 6) }
    }

    private mutating func grow(_ w: Int) {
        var n = wordCount * 2
        while n <= w { n *= 2 }
        let bigger = UnsafeMutablePointer<UInt64>.allocate(capacity: n)
        bigger.update(from: words, count: wordCount)
        (bigger + wordCount).initialize(repeating: 0, count: n - wordCount)
        words.deallocate()
        words = bigger
        wordCount = n
    }

    @inline(__always)
    func clear(_ i: Int) {
        let w = i &>> 6
        if w < wordCount { words[w] &= ~(1 &<< UInt64(i & 63)) }
    }

    /// The mask of bits [a, b) within word `w`'s 64 (the range meets the word).
    @inline(__always)
    private static func mask(_ w: Int, _ a: Int, _ b: Int) -> UInt64 {
        let lo = max(a - w &<< 6, 0), hi = min(b - w &<< 6, 64)
        return (~0 &>> UInt64(64 - hi)) & (~0 &<< UInt64(lo))
    }

    /// Sets bits [a, a + n).
    mutating func setRange(_ a: Int, _ n: Int) {
        guard n > 0 else { return }
        reserve(a + n - 1)
        for w in a &>> 6 ... (a + n - 1) &>> 6 { words[w] |= Self.mask(w, a, a + n) }
    }

    /// Clears bits [a, a + n).
    func clearRange(_ a: Int, _ n: Int) {
        guard n > 0, a &>> 6 < wordCount else { return }
        for w in a &>> 6 ... min((a + n - 1) &>> 6, wordCount - 1) { words[w] &= ~Self.mask(w, a, a + n) }
    }

    /// The first index of [a, a + n) whose bit is set: inline for a range within one word.
    @inline(__always)
    func firstSet(_ a: Int, _ n: Int) -> Int? {
        guard n > 0 else { return nil }
        let w = a &>> 6
        if w == (a + n - 1) &>> 6 {
            guard w < wordCount else { return nil }
            let m = words[w] & Self.mask(w, a, a + n)
            return m != 0 ? w &<< 6 | m.trailingZeroBitCount : nil
        }
        return firstSetAcross(a, n)
    }

    @inline(never)
    private func firstSetAcross(_ a: Int, _ n: Int) -> Int? {
        guard a &>> 6 < wordCount else { return nil }
        for w in a &>> 6 ... min((a + n - 1) &>> 6, wordCount - 1) {
            let m = words[w] & Self.mask(w, a, a + n)
            if m != 0 { return w &<< 6 + m.trailingZeroBitCount }
        }
        return nil
    }

    /// The highest index below `t` whose bit is clear (-1 when none).
    func lastClear(below t: Int) -> Int {
        guard t > 0 else { return -1 }
        var w = (t - 1) &>> 6
        if w >= wordCount { return t - 1 }
        var clear = ~words[w] & Self.mask(w, w &<< 6, t)
        while clear == 0 {
            w -= 1
            if w < 0 { return -1 }
            clear = ~words[w]
        }
        return w &<< 6 + 63 - clear.leadingZeroBitCount
    }
}
