import TraceModel

/// What pagehint knows about the events of the hinting model (spec §6.B) without a format file:
/// their systems, raw field sets, and how their printk text maps back to raw field values.
///
/// Text traces print values through the kernel's `print fmt`, which renames and transforms some fields
/// (filemap prints `ofs` = index × 4096 and `dev` as major:minor; vmscan prints `classzone` for
/// `highest_zoneidx` and symbolic lru names). The aliases below undo that, so a text trace and a binary
/// trace of the same capture carry the same raw values. Fields whose text is symbolic and
/// version-dependent (`gfp_flags`) stay strings in text traces.
enum KnownEvents {
    /// How a printed value becomes a raw field value.
    enum Conversion: UInt8 {
        /// Decimal, or hexadecimal with a 0x prefix; `true`/`false` as 1/0.
        case number
        /// Hexadecimal without prefix (filemap's `ino %lx`).
        case hex
        /// A byte offset printed for a page index (`ofs=%lu` of index << 12).
        case pageOffset
        /// `ofs=A-B`: A is index << 12, B is ((last_index + 1) << 12) - 1. Fills two fields.
        case pageRange
        /// `M:m` printed from a dev_t (MAJOR = dev >> 20).
        case devt
        /// vmscan's lru names.
        case lruName
        /// vmscan's RECLAIM_WB_* flag names.
        case reclaimFlags
        /// mm_lru_insertion's one-letter flags (`M`, `a`/`f`, `s`, `b`, `d`, `B`).
        case lruFlags
        /// A `%p` pointer: hexadecimal with or without 0x (hashed pointers print 16 digits), `(null)` as 0.
        case pointer
        /// Kept as an interned string.
        case string
        /// Printed but not a raw field (`page=%p` computed from pfn): skipped.
        case ignore
    }

    struct Alias {
        var printed: String
        var field: String
        var conversion: Conversion
    }

    struct Known {
        var system: String
        var fields: [FieldInfo]
        var aliases: [Alias]
        /// Leading words printed without `=`, as in `dev 8:1 ino 1a ...` and `bdi NAME: ...`.
        var prefix: Prefix = .none
    }

    enum Prefix { case none, devIno, bdi }

    static func u(_ n: String) -> FieldInfo { FieldInfo(name: n, kind: .unsigned) }
    static func s(_ n: String) -> FieldInfo { FieldInfo(name: n, kind: .signed) }
    static func p(_ n: String) -> FieldInfo { FieldInfo(name: n, kind: .pointer) }
    static func str(_ n: String) -> FieldInfo { FieldInfo(name: n, kind: .string) }
    static func a(_ printed: String, _ field: String, _ c: Conversion = .number) -> Alias {
        Alias(printed: printed, field: field, conversion: c)
    }

    static let filemapAddDelete = Known(
        system: "filemap", fields: [u("pfn"), u("i_ino"), u("index"), u("s_dev"), u("order")],
        aliases: [a("dev", "s_dev", .devt), a("ino", "i_ino", .hex), a("pfn", "pfn"), a("ofs", "index", .pageOffset),
                  a("order", "order"), a("page", "", .ignore)],
        prefix: .devIno)
    static let filemapRange = Known(
        system: "filemap", fields: [u("i_ino"), u("s_dev"), u("index"), u("last_index")],
        aliases: [a("dev", "s_dev", .devt), a("ino", "i_ino", .hex), a("ofs", "index", .pageRange)])
    static let vmscanFlags = a("flags", "reclaim_flags", .reclaimFlags)
    static let writebackFolio = Known(
        system: "writeback", fields: [str("name"), u("ino"), u("index")],
        aliases: [a("ino", "ino"), a("index", "index")], prefix: .bdi)
    static let reclaimBegin = Known(
        system: "vmscan", fields: [s("order"), str("gfp_flags")],
        aliases: [a("order", "order"), a("gfp_flags", "gfp_flags", .string)])
    static let reclaimEnd = Known(system: "vmscan", fields: [u("nr_reclaimed")], aliases: [a("nr_reclaimed", "nr_reclaimed")])

    static let table: [String: Known] = [
        "mm_filemap_add_to_page_cache": filemapAddDelete,
        "mm_filemap_delete_from_page_cache": filemapAddDelete,
        "mm_filemap_get_pages": filemapRange,
        "mm_filemap_map_pages": filemapRange,
        "mm_filemap_fault": Known(
            system: "filemap", fields: [u("i_ino"), u("s_dev"), u("index")],
            aliases: [a("dev", "s_dev", .devt), a("ino", "i_ino", .hex), a("ofs", "index", .pageOffset)]),
        "mm_lru_insertion": Known(
            system: "pagemap", fields: [p("folio"), u("pfn"), u("lru"), u("flags")],
            aliases: [a("folio", "folio"), a("pfn", "pfn"), a("lru", "lru"), a("flags", "flags", .lruFlags)]),
        "mm_lru_activate": Known(
            system: "pagemap", fields: [p("folio"), u("pfn")], aliases: [a("folio", "folio"), a("pfn", "pfn")]),
        "mm_vmscan_lru_isolate": Known(
            system: "vmscan",
            fields: [s("highest_zoneidx"), s("order"), u("nr_requested"), u("nr_scanned"), u("nr_skipped"),
                     u("nr_taken"), s("lru")],
            aliases: [a("classzone", "highest_zoneidx"), a("classzone_idx", "highest_zoneidx"), a("order", "order"),
                      a("nr_requested", "nr_requested"), a("nr_scanned", "nr_scanned"),
                      a("nr_skipped", "nr_skipped"), a("nr_taken", "nr_taken"), a("lru", "lru", .lruName)]),
        "mm_vmscan_lru_shrink_inactive": Known(
            system: "vmscan",
            fields: [s("nid"), u("nr_scanned"), u("nr_reclaimed"), u("nr_dirty"), u("nr_writeback"),
                     u("nr_congested"), u("nr_immediate"), u("nr_activate0"), u("nr_activate1"),
                     u("nr_ref_keep"), u("nr_unmap_fail"), s("priority"), s("reclaim_flags")],
            aliases: [a("nid", "nid"), a("nr_scanned", "nr_scanned"), a("nr_reclaimed", "nr_reclaimed"),
                      a("nr_dirty", "nr_dirty"), a("nr_writeback", "nr_writeback"),
                      a("nr_congested", "nr_congested"), a("nr_immediate", "nr_immediate"),
                      a("nr_activate_anon", "nr_activate0"), a("nr_activate_file", "nr_activate1"),
                      a("nr_ref_keep", "nr_ref_keep"), a("nr_unmap_fail", "nr_unmap_fail"),
                      a("priority", "priority"), vmscanFlags]),
        "mm_vmscan_lru_shrink_active": Known(
            system: "vmscan",
            fields: [s("nid"), u("nr_taken"), u("nr_active"), u("nr_deactivated"), u("nr_referenced"),
                     s("priority"), s("reclaim_flags")],
            aliases: [a("nid", "nid"), a("nr_taken", "nr_taken"), a("nr_active", "nr_active"),
                      a("nr_deactivated", "nr_deactivated"), a("nr_referenced", "nr_referenced"),
                      a("priority", "priority"), vmscanFlags]),
        "mm_vmscan_write_folio": Known(
            system: "vmscan", fields: [u("pfn"), s("reclaim_flags")],
            aliases: [a("page", "", .ignore), a("pfn", "pfn"), vmscanFlags]),
        "mm_vmscan_writepage": Known(
            system: "vmscan", fields: [u("pfn"), s("reclaim_flags")],
            aliases: [a("page", "", .ignore), a("pfn", "pfn"), vmscanFlags]),
        "mm_vmscan_kswapd_wake": Known(
            system: "vmscan", fields: [s("nid"), s("zid"), s("order")],
            aliases: [a("nid", "nid"), a("zid", "zid"), a("order", "order")]),
        "mm_vmscan_kswapd_sleep": Known(system: "vmscan", fields: [s("nid")], aliases: [a("nid", "nid")]),
        "mm_vmscan_wakeup_kswapd": Known(
            system: "vmscan", fields: [s("nid"), s("zid"), s("order"), str("gfp_flags")],
            aliases: [a("nid", "nid"), a("zid", "zid"), a("order", "order"), a("gfp_flags", "gfp_flags", .string)]),
        "mm_vmscan_direct_reclaim_begin": reclaimBegin,
        "mm_vmscan_memcg_reclaim_begin": reclaimBegin,
        "mm_vmscan_memcg_softlimit_reclaim_begin": reclaimBegin,
        "mm_vmscan_direct_reclaim_end": reclaimEnd,
        "mm_vmscan_memcg_reclaim_end": reclaimEnd,
        "mm_vmscan_memcg_softlimit_reclaim_end": reclaimEnd,
        "mm_vmscan_node_reclaim_begin": Known(
            system: "vmscan", fields: [s("nid"), s("order"), str("gfp_flags")],
            aliases: [a("nid", "nid"), a("order", "order"), a("gfp_flags", "gfp_flags", .string)]),
        "mm_vmscan_node_reclaim_end": reclaimEnd,
        "writeback_dirty_folio": writebackFolio,
        "folio_wait_writeback": writebackFolio,
        "writeback_dirty_page": writebackFolio,
        "wait_on_page_writeback": writebackFolio,
        "mm_page_alloc": Known(
            system: "kmem", fields: [u("pfn"), u("order"), str("gfp_flags"), s("migratetype")],
            aliases: [a("page", "", .ignore), a("pfn", "pfn"), a("order", "order"), a("migratetype", "migratetype"),
                      a("gfp_flags", "gfp_flags", .string)]),
        "mm_page_free": Known(
            system: "kmem", fields: [u("pfn"), u("order")],
            aliases: [a("page", "", .ignore), a("pfn", "pfn"), a("order", "order")]),
        "mm_page_free_batched": Known(
            system: "kmem", fields: [u("pfn")],
            aliases: [a("page", "", .ignore), a("pfn", "pfn"), a("order", "", .ignore)]),
        // trace_marker writes: tracefs prints them as `tracing_mark_write: TEXT`, trace-cmd report as
        // `print: tracing_mark_write: TEXT`; the whole text is the `buf` field.
        "print": Known(system: "ftrace", fields: [p("ip"), str("buf")], aliases: []),
        "page_fault_user": Known(
            system: "exceptions", fields: [u("address"), u("ip"), u("error_code")],
            aliases: [a("address", "address"), a("ip", "ip"), a("error_code", "error_code")]),
        "page_fault_kernel": Known(
            system: "exceptions", fields: [u("address"), u("ip"), u("error_code")],
            aliases: [a("address", "address"), a("ip", "ip"), a("error_code", "error_code")]),
        "sched_process_fork": Known(
            system: "sched", fields: [str("parent_comm"), s("parent_pid"), str("child_comm"), s("child_pid")],
            aliases: [a("comm", "parent_comm", .string), a("pid", "parent_pid"), a("child_comm", "child_comm", .string),
                      a("child_pid", "child_pid")]),
        "sched_process_exit": Known(
            system: "sched", fields: [str("comm"), s("pid"), s("prio")],
            aliases: [a("comm", "comm", .string), a("pid", "pid"), a("prio", "prio")]),
    ]

    static let lruNames: [String: Int64] = [
        "inactive_anon": 0, "active_anon": 1, "inactive_file": 2, "active_file": 3, "unevictable": 4,
    ]
    static let reclaimFlagBits: [String: Int64] = [
        "RECLAIM_WB_ANON": 0x1, "RECLAIM_WB_FILE": 0x2, "RECLAIM_WB_SYNC": 0x4, "RECLAIM_WB_ASYNC": 0x8,
        "RECLAIM_WB_MIXED": 0x10,
    ]

    /// Page size used to turn printed byte offsets back into page indices (x86-64, arm64 4K).
    static let pageShift: Int64 = 12
}
