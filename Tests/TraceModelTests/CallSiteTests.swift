@testable import TraceModel
import XCTest

final class CallSiteTests: XCTestCase {
    let rules = CallSiteRules.defaults

    func testNormalisationStripsClonesProfilingOffsetsAndRenames() {
        XCTAssertEqual(rules.normalise("filemap_readahead.isra.0"), "filemap_readahead")
        XCTAssertEqual(rules.normalise("do_execveat_common.constprop.0.cold"), "do_execveat_common")
        XCTAssertEqual(rules.normalise("foo.part.3"), "foo")
        XCTAssertEqual(rules.normalise("bar.llvm.123456"), "bar")
        XCTAssertEqual(rules.normalise("alloc_pages_noprof"), "alloc_pages")
        XCTAssertEqual(rules.normalise("__alloc_frozen_pages_noprof+0x26b"), "__alloc_frozen_pages")
        XCTAssertEqual(rules.normalise("shrink_page_list (ffffffff81234567)"), "shrink_folio_list")
        XCTAssertEqual(rules.normalise("add_to_page_cache_lru"), "filemap_add_folio")
        XCTAssertEqual(rules.normalise("__do_page_cache_readahead"), "page_cache_ra_unbounded")
        XCTAssertEqual(rules.normalise("isolate_lru_pages.isra.0"), "isolate_lru_folios")
    }

    /// The byte-wise cut against the rule written out on characters: up to the first space and the first
    /// '+', then up to the first '.' unless it begins the name, then without `_noprof`.
    func testCutSuffixesAgreesWithTheRuleOnCharacters() {
        func reference(_ raw: String) -> String {
            var s = Substring(raw)
            if let sp = s.firstIndex(of: " ") { s = s[..<sp] }
            if let plus = s.firstIndex(of: "+") { s = s[..<plus] }
            if let dot = s.firstIndex(of: "."), dot != s.startIndex { s = s[..<dot] }
            if s.hasSuffix("_noprof") { s = s.dropLast(7) }
            return String(s)
        }
        let names = ["", ".", ".LC0.1", "a.b", "_noprof", "x_noprof.isra.0", "a+b.c", "foo bar+0x1", "foo+0x1 (ffff)",
                     "bar.llvm.1_noprof", "alloc_pages_noprof+0x26b/0x300 [kvm]", "f_noprof_noprof", "+", " x"]
        for n in names {
            var raw = n
            XCTAssertEqual(raw.withUTF8 { CallSiteRules.cutSuffixes($0) }, reference(n), n)
        }
    }

    /// Patterns compared as bytes against the rule on characters: an exact name, or a prefix (`*`).
    func testPatternsMatchExactNamesAndPrefixesAsTheRuleOnCharactersDoes() throws {
        var r = CallSiteRules()
        try r.addRules("*: trace_* perf_tp_event *\nmm_page_alloc: __alloc_pages alloc_pages*\n", source: "test")
        let names = ["", "t", "trace_", "trace", "trace_event_raw_event_mm_page_alloc", "perf_tp_event", "perf_tp_event2",
                     "perf_tp_even", "__alloc_pages", "__alloc_pages_slowpath", "alloc_pages", "alloc_pagesx", "alloc_page"]
        for n in names {
            XCTAssertEqual(r.isTracing(n), n.hasPrefix("trace_") || n == "perf_tp_event" || n.hasPrefix(""), n)
            XCTAssertEqual(r.implements("mm_page_alloc", n), n == "__alloc_pages" || n.hasPrefix("alloc_pages"), n)
            XCTAssertFalse(r.implements("mm_page_free", n), n)
        }
        var exact = CallSiteRules()
        try exact.addRules("*: trace_* perf_tp_event\n", source: "test")
        for n in names {
            XCTAssertEqual(exact.isTracing(n), n.hasPrefix("trace_") || n == "perf_tp_event", n)
        }
    }

    /// A later rename of the same old name wins; a name is renamed after its suffixes are cut, and only
    /// a whole name.
    func testRenamesApplyToWholeCutNamesAndTheLastOneWins() throws {
        var r = CallSiteRules()
        try r.addRenames("old_fn new_fn\nold_fn newer_fn 6.18\nfoo bar\n", source: "test")
        let cases = [("old_fn", "newer_fn"), ("old_fn.isra.0+0x10/0x20", "newer_fn"), ("old_fn_noprof", "newer_fn"),
                     ("old_fn2", "old_fn2"), ("fo", "fo"), ("foo", "bar"), ("", "")]
        for (raw, want) in cases { XCTAssertEqual(r.normalise(raw), want, raw) }
    }

    /// Hand-written stacks (innermost first), as 6.1 and 6.18 print them for the same code path.
    func testSameSiteOnBothKernelsAfterNormalisation() {
        // read(2) readahead: 6.18 async path, 6.18 sync path, 6.1 (engine reached by tail calls). Stacks as
        // the shipped 6.18 and 6.1 traces print them.
        let k618async = ["trace_event_raw_event_mm_filemap_op_page_cache", "__filemap_add_folio", "filemap_add_folio",
                         "page_cache_ra_order", "filemap_readahead.isra.0", "filemap_get_pages", "filemap_read"]
        let k618sync = ["trace_event_raw_event_mm_filemap_op_page_cache", "__filemap_add_folio", "filemap_add_folio",
                        "page_cache_ra_order", "filemap_get_pages", "filemap_read"]
        let k61 = ["trace_event_raw_event_mm_filemap_op_page_cache", "__filemap_add_folio", "filemap_add_folio",
                   "page_cache_ra_unbounded", "filemap_get_pages", "filemap_read"]
        for frames in [k618async, k618sync, k61] {
            let n = frames.map(rules.normalise)
            let i = rules.siteIndex(event: "mm_filemap_add_to_page_cache", normalised: n)
            XCTAssertEqual(i.map { n[$0] }, "filemap_get_pages")
        }
        // Anonymous fault: do_anonymous_page is out of line on 6.18 only.
        let a618 = ["__alloc_frozen_pages_noprof", "alloc_pages_mpol", "vma_alloc_folio_noprof", "do_anonymous_page",
                    "__handle_mm_fault", "handle_mm_fault"].map(rules.normalise)
        let a61 = ["__alloc_pages", "__folio_alloc", "vma_alloc_folio", "__handle_mm_fault", "handle_mm_fault"].map(rules.normalise)
        for n in [a618, a61] {
            XCTAssertEqual(rules.siteIndex(event: "mm_page_alloc", normalised: n).map { n[$0] }, "__handle_mm_fault")
        }
        // Renamed between the two kernels.
        XCTAssertEqual(rules.normalise("__pagevec_release"), "__folio_batch_release")
        XCTAssertEqual(rules.normalise("get_free_pages_noprof"), rules.normalise("__get_free_pages"))
        let fault = ["trace_event_raw_event_exceptions", "exc_page_fault", "asm_exc_page_fault"].map(rules.normalise)
        XCTAssertNil(rules.siteIndex(event: "page_fault_user", normalised: fault))
    }

    func testResolverInternsSitesAndPaths() {
        let ctx = TraceContext()
        let t = ctx.addType(system: "kmem", name: "mm_page_free", fields: [], inferred: false)
        let frames = ["trace_event_raw_event_mm_page_free", "free_unref_folios", "folios_put_refs", "shrink_folio_list.isra.0", "shrink_inactive_list"]
        let stack = ctx.stacks.intern(frames.map { ctx.symbols.intern($0) })
        let r1 = CallSiteResolver(depth: 1)
        let s = r1.site(type: t, stack: stack, ctx)
        XCTAssertEqual(r1.sites[s.site], "shrink_folio_list")
        XCTAssertEqual(r1.rawSites[s.raw], "shrink_folio_list.isra.0")
        let r2 = CallSiteResolver(depth: 2)
        XCTAssertEqual(r2.sites[r2.site(type: t, stack: stack, ctx).site], "shrink_folio_list;shrink_inactive_list")
        XCTAssertEqual(r1.sites[r1.site(type: t, stack: 0, ctx).site], CallSiteResolver.noStack)
    }

    func testRulesParseErrorsAndOverrides() throws {
        var r = CallSiteRules.defaults
        XCTAssertThrowsError(try r.addRules("no colon here", source: "x")) { e in
            XCTAssertTrue("\(e)".contains("x: line 1"), "\(e)")
        }
        try r.addRules("mm_page_free: free_unref_folios folios_put_refs shrink_folio_list\n", source: "user")
        let n = ["free_unref_folios", "folios_put_refs", "shrink_folio_list", "shrink_inactive_list"]
        XCTAssertEqual(r.siteIndex(event: "mm_page_free", normalised: n).map { n[$0] }, "shrink_inactive_list")
        XCTAssertThrowsError(try r.addRenames("onlyone\n", source: "r"))
    }

    func testEveryModelEventHasARule() {
        for e in ["mm_filemap_add_to_page_cache", "mm_filemap_delete_from_page_cache", "mm_filemap_get_pages",
                  "mm_filemap_map_pages", "mm_filemap_fault", "mm_lru_insertion", "mm_lru_activate",
                  "mm_vmscan_lru_isolate", "mm_vmscan_lru_shrink_inactive", "mm_vmscan_lru_shrink_active",
                  "mm_vmscan_write_folio", "mm_vmscan_direct_reclaim_begin", "mm_vmscan_memcg_reclaim_begin",
                  "mm_vmscan_kswapd_wake", "writeback_dirty_folio", "folio_wait_writeback", "mm_page_alloc",
                  "mm_page_free", "mm_page_free_batched", "page_fault_user"] {
            XCTAssertTrue(rules.events.contains(e), e)
        }
    }
}
