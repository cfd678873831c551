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
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.trimmingLeadingSpaces()
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
        // Name is the last identifier of the declaration, before any [N].
        var d = decl
        var isArray = false
        // `type name[N]` is an array; in `__data_loc char[] name` the brackets belong to the type.
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
