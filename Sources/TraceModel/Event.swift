/// One trace record, whatever format it came from.
///
/// Events are plain values with no heap storage: readers fill one in place and hand it to a sink,
/// so the hot path allocates nothing. Strings (comm, event names, string fields, symbols) are interned
/// in the `TraceContext` and carried as integer ids.
public struct Event: Sendable {
    /// Largest number of fields kept inline. Fields past this are not kept (counted in `droppedFields`).
    public static let maxFields = 16

    /// Timestamp in nanoseconds of the trace clock. Text formats print microseconds: their
    /// timestamps are multiples of 1000.
    public var timestamp: UInt64
    /// Position in the source: byte offset for binary formats, 1-based line number for text formats.
    public var source: UInt64
    /// Index into `TraceContext.types`.
    public var type: EventTypeID
    /// Interned comm of the task (`TraceContext.strings`), 0 when unknown.
    public var comm: StringID
    /// Interned kernel stack (`TraceContext.stacks`), 0 when the event carries none.
    public var stack: StackID
    public var pid: Int32
    public var cpu: UInt16
    /// `common_flags` where the format has it (irq/softirq/need-resched bits), else 0.
    public var commonFlags: UInt8
    /// Number of valid entries in `values`.
    public var fieldCount: UInt8
    /// Field values in the order of the event type's `fields`. Integers as their two's complement bits,
    /// string fields as interned `StringID`s.
    public var values: InlineArray<16, Int64>

    /// Every field zero. Written out (not as property defaults) so that readers in other modules, which
    /// make one per record, get the stores inlined rather than a call and a copy.
    @inlinable public init() {
        timestamp = 0
        source = 0
        type = 0
        comm = 0
        stack = 0
        pid = 0
        cpu = 0
        commonFlags = 0
        fieldCount = 0
        values = InlineArray(repeating: 0)
    }

    @inlinable public func value(_ i: Int) -> Int64? {
        i >= 0 && i < Int(fieldCount) ? values[i] : nil
    }
}

public typealias EventTypeID = UInt32
public typealias StringID = UInt32
public typealias StackID = UInt32
public typealias SymbolID = UInt32

/// How a field's value is to be read.
public enum FieldKind: UInt8, Sendable, Codable {
    case signed, unsigned, string, pointer
}

public struct FieldInfo: Sendable, Equatable {
    public var name: String
    public var kind: FieldKind
    public init(name: String, kind: FieldKind) {
        self.name = name
        self.kind = kind
    }
}

/// An event type: `system:name` plus the fields this trace carries for it.
public struct EventType: Sendable {
    public var id: EventTypeID
    public var system: String
    public var name: String
    public var fields: [FieldInfo]
    /// True when the type is known only from its records (no format description).
    public var inferredSchema: Bool
    /// True when the fields come from pagehint's built-in list rather than the trace's format file:
    /// fields a kernel prints beyond that list are appended as they are met.
    public var extendable: Bool = false

    public var fullName: String { system.isEmpty ? name : system + ":" + name }

    public func fieldIndex(_ name: String) -> Int? { fields.firstIndex { $0.name == name } }
}

/// A run of lost events reported by the kernel (ring buffer overrun, perf LOST records).
public struct LostEvents: Sendable, Equatable {
    public var cpu: Int
    /// Timestamp of the point where the loss was noticed (0 when unknown).
    public var timestamp: UInt64
    /// Number lost; 0 when the kernel says only "some" were lost.
    public var count: UInt64
    public init(cpu: Int, timestamp: UInt64, count: UInt64) {
        self.cpu = cpu
        self.timestamp = timestamp
        self.count = count
    }
}
