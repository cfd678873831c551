/// One field of a tracefs event `format` description.
public struct FormatField: Sendable, Equatable {
    public var name: String
    public var type: String
    public var offset: Int
    public var size: Int
    public var signed: Bool
    /// `char name[N]` or `__data_loc char[]`: decoded as a string.
    public var isString: Bool
    /// `__data_loc`: the field holds (length << 16 | offset) of the data in the record.
    public var isDataLoc: Bool
    /// `__rel_loc`: like data_loc, offset relative to the end of this field.
    public var isRelLoc: Bool
    /// A fixed array other than char (e.g. `unsigned long caller[8]`).
    public var isArray: Bool
    public var isPointer: Bool

    public var kind: FieldKind {
        if isString { return .string }
        if isPointer { return .pointer }
        return signed ? .signed : .unsigned
    }
}

/// A parsed `events/<system>/<event>/format` file, as tracefs writes it and trace.dat / perf.data embed it.
public struct EventFormat: Sendable {
    public var system: String
    public var name: String
    public var id: Int
    public var commonFields: [FormatField]
    public var fields: [FormatField]
    public var printFmt: String

    /// Parses the text of a format file. Returns nil when it has no `name:` or `ID:` line.
    public static func parse(_ text: String, system: String) -> EventFormat? {
        var name: String? = nil
        var id: Int? = nil
        var common: [FormatField] = []
        var fields: [FormatField] = []
        var printFmt = ""
        var inCommon = true
        // Lines are found on the bytes: splitting the text by characters costs more than the rest of the
        // parse (a print fmt line runs to kilobytes).
        for rawLine in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false) {
            let line = Substring(rawLine).trimmingLeadingSpaces()
            if line.hasPrefix("name:") {
                name = String(line.dropFirst(5)).trimmed()
            } else if line.hasPrefix("ID:") {
                id = Int(String(line.dropFirst(3)).trimmed())
            } else if line.hasPrefix("field:") || line.hasPrefix("field special:") {
                if let f = parseField(String(line)) {
                    if inCommon && f.name.hasPrefix("common_") { common.append(f) } else { fields.append(f) }
                }
            } else if line.isEmpty {
                if !common.isEmpty { inCommon = false }
            } else if line.hasPrefix("print fmt:") {
                printFmt = String(line.dropFirst(10)).trimmed()
            }
        }
        guard let n = name, let i = id else { return nil }
        return EventFormat(system: system, name: n, id: i, commonFields: common, fields: fields, printFmt: printFmt)
    }

    /// `field:unsigned long pfn;\toffset:8;\tsize:8;\tsigned:0;`
    static func parseField(_ line: String) -> FormatField? {
        var line = line
        // Format files are ASCII; other text keeps the character-wise reading (Unicode letters in names).
        if line.utf8.contains(where: { $0 >= 0x80 }) { return parseFieldCharacters(line) }
        return line.withUTF8 { parseField(ascii: $0) }
    }

    /// The same on the line's bytes: a trace has a few hundred field lines to read before its first
    /// event, and character-wise string handling made them a few percent of a whole read.
    private static func parseField(ascii b: UnsafeBufferPointer<UInt8>) -> FormatField? {
        func isBlank(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A }
        /// `r` without blanks (space, tab, newline) at either end.
        func trimmed(_ r: Range<Int>) -> Range<Int> {
            var lo = r.lowerBound, hi = r.upperBound
            while lo < hi && isBlank(b[lo]) { lo += 1 }
            while hi > lo && isBlank(b[hi - 1]) { hi -= 1 }
            return lo..<hi
        }
        func has(_ r: Range<Int>, prefix: StaticString) -> Bool {
            let n = prefix.utf8CodeUnitCount
            guard r.count >= n else { return false }
            let p = prefix.utf8Start
            for k in 0..<n where b[r.lowerBound + k] != p[k] { return false }
            return true
        }
        func has(_ r: Range<Int>, suffix: StaticString) -> Bool {
            let n = suffix.utf8CodeUnitCount
            guard r.count >= n else { return false }
            let p = suffix.utf8Start
            for k in 0..<n where b[r.upperBound - n + k] != p[k] { return false }
            return true
        }
        func contains(_ r: Range<Int>, _ needle: StaticString) -> Bool {
            let n = needle.utf8CodeUnitCount
            var i = r.lowerBound
            while i + n <= r.upperBound {
                if has(i..<r.upperBound, prefix: needle) { return true }
                i += 1
            }
            return false
        }
        /// `Int(text)`: an optional sign, then decimal digits only.
        func int(_ r: Range<Int>) -> Int? {
            var i = r.lowerBound
            var neg = false
            if i < r.upperBound && (b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-")) { neg = b[i] == UInt8(ascii: "-"); i += 1 }
            guard i < r.upperBound else { return nil }
            var v = 0
            while i < r.upperBound {
                let d = b[i] &- 0x30
                guard d < 10 else { return nil }
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (a, o2) = neg ? m.subtractingReportingOverflow(Int(d)) : m.addingReportingOverflow(Int(d))
                if o1 || o2 { return nil }
                v = a
                i += 1
            }
            return v
        }
        func string(_ r: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: b[r]), as: UTF8.self) }

        var decl: Range<Int>? = nil
        var offset = -1, size = -1, signed = false
        var i = 0
        while i < b.count {
            var j = i
            while j < b.count && b[j] != UInt8(ascii: ";") { j += 1 }
            var s = i
            while s < j && (b[s] == 0x20 || b[s] == 0x09) { s += 1 }
            let p = s..<j
            if has(p, prefix: "field special:") {
                decl = trimmed((s + 14)..<j)
            } else if has(p, prefix: "field:") {
                decl = trimmed((s + 6)..<j)
            } else if has(p, prefix: "offset:") {
                offset = int(trimmed((s + 7)..<j)) ?? -1
            } else if has(p, prefix: "size:") {
                size = int(trimmed((s + 5)..<j)) ?? -1
            } else if has(p, prefix: "signed:") {
                let v = trimmed((s + 7)..<j)
                signed = v.count == 1 && b[v.lowerBound] == UInt8(ascii: "1")
            }
            i = j + 1
        }
        guard let dr = decl, !dr.isEmpty, offset >= 0, size >= 0 else { return nil }
        // Name is the last identifier of the declaration, before any [N].
        var d = dr
        var isArray = false
        // `type name[N]` is an array; in `__data_loc char[] name` the brackets belong to the type.
        if has(d, suffix: "]"), let br = d.last(where: { b[$0] == UInt8(ascii: "[") }) {
            isArray = true
            d = trimmed(d.lowerBound..<br)
        }
        func isIdent(_ c: UInt8) -> Bool {
            c == UInt8(ascii: "_") || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) || (c >= 0x30 && c <= 0x39)
        }
        var nameStart = d.upperBound
        while nameStart > d.lowerBound && isIdent(b[nameStart - 1]) { nameStart -= 1 }
        let type = trimmed(d.lowerBound..<nameStart)
        let isDataLoc = has(dr, prefix: "__data_loc")
        let isRelLoc = has(dr, prefix: "__rel_loc")
        let isChar = has(type, suffix: "char") || contains(type, "char[]") || contains(dr, "char[]")
        let isString = (isArray && isChar) || ((isDataLoc || isRelLoc) && isChar)
        return FormatField(name: string(nameStart..<d.upperBound), type: string(type), offset: offset, size: size, signed: signed,
                           isString: isString, isDataLoc: isDataLoc, isRelLoc: isRelLoc,
                           isArray: isArray && !isString, isPointer: contains(type, "*"))
    }

    private static func parseFieldCharacters(_ line: String) -> FormatField? {
        var decl = ""
        var offset = -1, size = -1, signed = false
        for part in line.split(separator: ";") {
            let p = part.trimmingLeadingSpaces()
            if p.hasPrefix("field special:") {
                decl = String(p.dropFirst(14)).trimmed()
            } else if p.hasPrefix("field:") {
                decl = String(p.dropFirst(6)).trimmed()
            } else if p.hasPrefix("offset:") {
                offset = Int(String(p.dropFirst(7)).trimmed()) ?? -1
            } else if p.hasPrefix("size:") {
                size = Int(String(p.dropFirst(5)).trimmed()) ?? -1
            } else if p.hasPrefix("signed:") {
                signed = String(p.dropFirst(7)).trimmed() == "1"
            }
        }
        guard !decl.isEmpty, offset >= 0, size >= 0 else { return nil }
        var d = decl
        var isArray = false
        if d.hasSuffix("]"), let br = d.lastIndex(of: "[") {
            isArray = true
            d = String(d[..<br]).trimmed()
        }
        let nameStart = d.lastIndex { !($0.isLetter || $0.isNumber || $0 == "_") }.map { d.index(after: $0) } ?? d.startIndex
        let name = String(d[nameStart...])
        let type = String(d[..<nameStart]).trimmed()
        let isDataLoc = decl.hasPrefix("__data_loc")
        let isRelLoc = decl.hasPrefix("__rel_loc")
        let isChar = type.hasSuffix("char") || type.contains("char[]") || decl.contains("char[]")
        let isString = (isArray && isChar) || ((isDataLoc || isRelLoc) && isChar)
        return FormatField(name: name, type: type, offset: offset, size: size, signed: signed,
                           isString: isString, isDataLoc: isDataLoc, isRelLoc: isRelLoc,
                           isArray: isArray && !isString, isPointer: type.contains("*"))
    }
}

extension Substring {
    func trimmingLeadingSpaces() -> Substring {
        var s = self[...]
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        return s
    }
}

extension String {
    public func trimmed() -> String {
        var s = self[...]
        while let c = s.first, c == " " || c == "\t" || c == "\n" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\n" { s = s.dropLast() }
        return String(s)
    }
}
