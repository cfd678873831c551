/// Everything a reader learns about a trace besides the events themselves: event types, interned
/// strings, symbols and stacks, lost-event runs and trace facts. The model and the store read events
/// through this context and never learn which format they came from.
public final class TraceContext: @unchecked Sendable {
    public private(set) var types: [EventType] = []
    private var typeByName: [String: EventTypeID] = [:]
    /// comm values and string fields.
    public let strings = StringTable()
    /// Function names (or unresolved addresses written as `0x...`) used as stack frames.
    public let symbols = StringTable()
    public let stacks = StackTable()
    public var lost: [LostEvents] = []

    /// Short name of the input format (`tracefs-text`, `trace-cmd-report`, `trace.dat-v7`, `perf.data`, ...).
    public var format: String = ""
    /// `uname -r` of the traced kernel when the input says it.
    public var kernelRelease: String? = nil
    /// Number of CPUs the trace covers (the highest CPU seen + 1 when the input does not say).
    public var cpus: Int = 0
    /// Free-form facts a reader wants to report (`trace.dat` version, compression, buffer names...).
    public var facts: [(String, String)] = []

    public init() {}

    /// Registers or returns an event type. When the type exists with an inferred schema and a format
    /// description arrives, the described fields replace the inferred ones.
    @discardableResult
    public func addType(system: String, name: String, fields: [FieldInfo], inferred: Bool, extendable: Bool = false) -> EventTypeID {
        let key = system + ":" + name
        if let id = typeByName[key] {
            if (types[Int(id)].inferredSchema || types[Int(id)].extendable) && !inferred && !extendable {
                types[Int(id)].fields = fields
                types[Int(id)].inferredSchema = false
                types[Int(id)].extendable = false
            }
            return id
        }
        let id = EventTypeID(types.count)
        var t = EventType(id: id, system: system, name: name, fields: fields, inferredSchema: inferred)
        t.extendable = extendable
        types.append(t)
        typeByName[key] = id
        // Bare names are looked up too (text formats print no system).
        if typeByName[name] == nil { typeByName[name] = id }
        return id
    }

    /// Looks a type up by `system:name` or by bare name.
    public func typeID(_ name: String) -> EventTypeID? { typeByName[name] }

    /// Appends a field to a type whose schema is inferred from records; returns its index, or nil when full.
    public func appendInferredField(_ type: EventTypeID, _ field: FieldInfo) -> Int? {
        let t = Int(type)
        if let i = types[t].fieldIndex(field.name) { return i }
        if !types[t].inferredSchema && !types[t].extendable { return nil }
        if types[t].fields.count >= Event.maxFields { return nil }
        types[t].fields.append(field)
        return types[t].fields.count - 1
    }

    /// Sets the kind of an inferred field (a field first seen as a number can turn out to hold text).
    public func setFieldKind(_ type: EventTypeID, _ index: Int, _ kind: FieldKind) {
        types[Int(type)].fields[index].kind = kind
    }

    public func noteCPU(_ cpu: Int) { if cpu + 1 > cpus { cpus = cpu + 1 } }

    /// The frames of a stack as names, innermost first.
    public func stackNames(_ id: StackID) -> [String] {
        stacks.frames(of: id).map { symbols[$0] }
    }

    /// A field's value rendered as the reader stored it (string fields resolved).
    public func render(_ e: Event, field i: Int) -> String {
        guard let v = e.value(i) else { return "" }
        let f = types[Int(e.type)].fields[i]
        switch f.kind {
        case .string: return strings[StringID(truncatingIfNeeded: v)]
        case .unsigned, .pointer: return String(UInt64(bitPattern: v))
        case .signed: return String(v)
        }
    }
}

/// Receives events in timestamp order. Readers are generic over the sink so the call is direct.
public protocol EventSink {
    mutating func consume(_ event: borrowing Event, context: TraceContext)
}
