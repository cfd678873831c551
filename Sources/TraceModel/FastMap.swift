/// A key for `FastMap`: a cheap, well-mixed 64-bit hash (the standard library's seeded SipHash costs
/// more than the whole per-event work of the replay loop).
public protocol FastHashable: Equatable {
    var fastHash: UInt64 { get }
}

/// Finalizer of a 64-bit hash (the MurmurHash3 fmix64 constants): every input bit reaches every output bit.
@inlinable @inline(__always)
public func fastMix(_ x: UInt64) -> UInt64 {
    var h = x
    h ^= h >> 33
    h &*= 0xFF51_AFD7_ED55_8CCD
    h ^= h >> 33
    h &*= 0xC4CE_B9FE_1A85_EC53
    h ^= h >> 33
    return h
}

extension UInt64: FastHashable {
    @inlinable public var fastHash: UInt64 { fastMix(self) }
}

/// An open-addressing hash map (linear probing, backward-shift deletion) for hot loops: no per-operation
/// allocation, no seeded hashing. Deterministic: iteration is not offered, so its order cannot leak into
/// outputs.
public struct FastMap<Key: FastHashable, Value> {
    @usableFromInline struct Slot {
        @usableFromInline var key: Key
        @usableFromInline var value: Value
        @usableFromInline var used: Bool
        @inlinable init(key: Key, value: Value, used: Bool) {
            self.key = key
            self.value = value
            self.used = used
        }
    }
    @usableFromInline var slots: [Slot]
    @usableFromInline var mask: Int
    @usableFromInline var filler: Slot
    @usableFromInline var stored = 0
    public var count: Int { stored }
    /// Bytes of the slots (for memory accounting).
    public var bytes: Int { slots.count * MemoryLayout<Slot>.stride }

    /// `emptyKey` and `emptyValue` only fill unused slots; any key, `emptyKey` included, can be stored.
    @inlinable
    public init(emptyKey: Key, emptyValue: Value, capacity: Int = 1024) {
        var c = 16
        while c < capacity * 2 { c <<= 1 }
        filler = Slot(key: emptyKey, value: emptyValue, used: false)
        slots = Array(repeating: filler, count: c)
        mask = c - 1
    }

    @inlinable @inline(__always)
    func position(_ k: Key) -> (Int, Bool) {
        var i = Int(truncatingIfNeeded: k.fastHash) & mask
        while slots[i].used {
            if slots[i].key == k { return (i, true) }
            i = (i + 1) & mask
        }
        return (i, false)
    }

    @inlinable
    public subscript(_ k: Key) -> Value? {
        get {
            let (i, found) = position(k)
            return found ? slots[i].value : nil
        }
        set {
            if let v = newValue { set(k, v) } else { remove(k) }
        }
    }

    /// `k`'s value, or the empty slot where `insert(_:_:at:)` enters it: one probe for a look-up that
    /// may be followed by an insertion. The slot holds until the map next changes.
    @inlinable
    public func probe(_ k: Key) -> (slot: Int, value: Value?) {
        let (i, found) = position(k)
        return (i, found ? slots[i].value : nil)
    }

    /// Enters `k`, absent, at the slot `probe(k)` gave, the map unchanged since.
    @inlinable
    public mutating func insert(_ k: Key, _ v: Value, at i: Int) {
        slots[i] = Slot(key: k, value: v, used: true)
        stored += 1
        if stored * 2 > slots.count { grow() }
    }

    @inlinable
    public mutating func set(_ k: Key, _ v: Value) {
        let (i, found) = position(k)
        if found { slots[i].value = v; return }
        slots[i] = Slot(key: k, value: v, used: true)
        stored += 1
        if stored * 2 > slots.count { grow() }
    }

    @inlinable
    public mutating func remove(_ k: Key) {
        let (at, found) = position(k)
        guard found else { return }
        var i = at
        stored -= 1
        // Backward-shift deletion: move later members of the probe run into the hole.
        var j = i
        while true {
            j = (j + 1) & mask
            if !slots[j].used { break }
            let home = Int(truncatingIfNeeded: slots[j].key.fastHash) & mask
            // Move j to i when its home is not cyclically in (i, j].
            let inRange = i <= j ? (home > i && home <= j) : (home > i || home <= j)
            if !inRange {
                slots[i] = slots[j]
                i = j
            }
        }
        slots[i] = filler
    }

    @inlinable
    mutating func grow() {
        let old = slots
        slots = Array(repeating: filler, count: old.count * 2)
        mask = slots.count - 1
        for s in old where s.used {
            var i = Int(truncatingIfNeeded: s.key.fastHash) & mask
            while slots[i].used { i = (i + 1) & mask }
            slots[i] = s
        }
    }
}

/// A value type of arrays: sendable when its keys and values are.
extension FastMap: Sendable where Key: Sendable, Value: Sendable {}
extension FastMap.Slot: Sendable where Key: Sendable, Value: Sendable {}
