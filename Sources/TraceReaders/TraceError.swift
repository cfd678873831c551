/// A reader's error: always names the file, where in it (byte offset or line) and why.
public struct TraceError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// The data is malformed, truncated or of an unsupported version (exit 65, EX_DATAERR).
        case badData
        /// The file cannot be opened or read (exit 66, EX_NOINPUT).
        case unreadable
        /// The user asked for something that does not fit the input (exit 64, EX_USAGE).
        case usage
    }
    public var kind: Kind
    public var file: String
    public var where_: String
    public var reason: String

    public init(_ kind: Kind, file: String, offset: UInt64? = nil, line: Int? = nil, _ reason: String) {
        self.kind = kind
        self.file = file
        if let o = offset { where_ = "byte \(o)" } else if let l = line { where_ = "line \(l)" } else { where_ = "" }
        self.reason = reason
    }

    public var description: String {
        where_.isEmpty ? "\(file): \(reason)" : "\(file): \(where_): \(reason)"
    }

    public var exitCode: Int32 {
        switch kind {
        case .badData: return 65
        case .unreadable: return 66
        case .usage: return 64
        }
    }

    static func bad(_ file: String, _ offset: UInt64, _ reason: String) -> TraceError {
        TraceError(.badData, file: file, offset: offset, reason)
    }
    static func badLine(_ file: String, _ line: Int, _ reason: String) -> TraceError {
        TraceError(.badData, file: file, line: line, reason)
    }
}
