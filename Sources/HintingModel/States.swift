/// Guest-declared page states (spec §1.1): stable, unused, volatile, potentially volatile.
public enum GuestState: UInt8, Sendable, CaseIterable {
    case stable = 0, unused = 1, volatile = 2, potentiallyVolatile = 3
    public var letter: String { ["S", "U", "V", "P"][Int(rawValue)] }
}

/// Host content states (spec §1.2): resident, preserved (host swap), zero.
public enum HostState: UInt8, Sendable, CaseIterable {
    case resident = 0, preserved = 1, zero = 2
    public var letter: String { ["r", "p", "z"][Int(rawValue)] }
}

/// The patch series the replay follows (spec §0). G09 is the default.
public enum Series: String, Sendable, CaseIterable, Comparable {
    case h05b, g06, g07, g09
    var rank: Int { switch self { case .h05b: 0; case .g06: 1; case .g07: 2; case .g09: 3 } }
    public static func < (a: Series, b: Series) -> Bool { a.rank < b.rank }
    public var label: String { rawValue.uppercased() }
}

/// ESSA command codes (s390 header, spec §2.1).
public enum Essa: Int, Sendable, CaseIterable {
    case getState = 0, setStable = 1, setUnused = 2, setVolatile = 3, setPVolatile = 4
    case setStableMakeResident = 5, setStableIfNotDiscarded = 6
    public var name: String {
        ["GET_STATE", "SET_STABLE", "SET_UNUSED", "SET_VOLATILE", "SET_PVOLATILE", "SET_STABLE_MAKE_RESIDENT",
         "SET_STABLE_IF_NOT_DISCARDED"][rawValue]
    }
}

/// The clause of the volatility predicate (spec §3.3) that kept a page stable.
public enum Clause: Int, Sendable, CaseIterable {
    case reserved = 0, dirty, writeback, locked, privateData, discarded, notUptodate, notLRU, anon,
         swapCacheNotAnon, noMapping, mlocked, counts, lockBusy
    public var name: String {
        ["reserved", "dirty", "writeback", "locked", "private", "discarded", "!uptodate", "!lru", "anon",
         "swapcache&!anon", "no-mapping", "mlocked", "mapcount+offset!=count", "lock-busy"][rawValue]
    }
}

/// Hook sites of spec §4 that the replay executes. The raw value orders reports; `id` is the spec's id.
public enum Hook: UInt8, Sendable, CaseIterable {
    case A1, A2, A2d, A3, A4, A6, A8
    case B1, B3, B4
    case C1, C2, C3, C7
    case D1, D2, D3
    case E1, E2, E4
    case F1, F4, F13
    case G1, G2, G3, G6
    case H1, H2, H3, H4
    /// Design alternative A1 of spec §7.2: make_stable in every reference acquisition, make_volatile
    /// in every release that leaves the count above zero.
    case getPage, putPage
    /// Design alternatives A2a (`page_still_in_mapping`), A3a (check in `lru_to_page`), A3c (stable while
    /// off the LRU: make_stable at isolation, make_volatile at put-back).
    case stillInMapping, lruToPage, isolateStable, putbackVolatile
    /// The host's own actions (evictions, discard faults): not a guest hook, counted apart.
    case host
    public var id: String {
        switch self {
        case .host: return "host"
        case .getPage: return "A1:get"
        case .putPage: return "A1:put"
        case .stillInMapping: return "A2a:recheck"
        case .lruToPage: return "A3a:lru_to_page"
        case .isolateStable: return "A3c:isolate"
        case .putbackVolatile: return "A3c:putback"
        default: return "\(self)"
        }
    }
    /// The hook with this `id`.
    public init?(id: String) {
        guard let h = Hook.allCases.first(where: { $0.id == id }) else { return nil }
        self = h
    }

    public var function: String {
        switch self {
        case .A1: return "__free_pages_ok"
        case .A2: return "free_hot_cold_page"
        case .A2d: return "free_hot_cold_page (discard list)"
        case .A3: return "buffered_rmqueue"
        case .A4: return "__free_pages"
        case .A6: return "try_to_free_pages (discard-list flush)"
        case .A8: return "page_shrink_discard_list (tick/idle)"
        case .B1: return "__remove_from_page_cache"
        case .B3: return "add_to_page_cache"
        case .B4: return "__pagevec_lru_add"
        case .C1: return "find_get_page"
        case .C2: return "find_lock_page (write_begin)"
        case .C3: return "find_get_pages"
        case .C7: return "find_lock_page_nodiscard (filemap_fault)"
        case .D1: return "unlock_page"
        case .D2: return "test_clear_page_dirty"
        case .D3: return "test_clear_page_writeback"
        case .E1: return "put_page_testzero"
        case .E2: return "page_cache_release"
        case .E4: return "release_pages (nocheck)"
        case .F1: return "page_add_file_rmap"
        case .F4: return "page_remove_rmap"
        case .F13: return "copy_one_pte"
        case .G1: return "do_wp_page (copy)"
        case .G2: return "do_wp_page (shared reuse)"
        case .G3: return "do_wp_page (pte write)"
        case .G6: return "__do_fault"
        case .H1: return "shrink_inactive_list (put-back)"
        case .H2: return "shrink_active_list (to inactive)"
        case .H3: return "shrink_active_list (stay active)"
        case .H4: return "shrink_page_list"
        case .getPage: return "get_page (alternative A1)"
        case .putPage: return "put_page (alternative A1)"
        case .stillInMapping: return "page_still_in_mapping (alternative A2a)"
        case .lruToPage: return "lru_to_page (alternative A3a)"
        case .isolateStable: return "isolate_lru_pages make_stable (alternative A3c)"
        case .putbackVolatile: return "LRU put-back make_volatile (alternative A3c)"
        case .host: return "host"
        }
    }
}
