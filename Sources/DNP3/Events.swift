/// Events: one buffer per class with a capacity; the oldest event of a full class is dropped and the
/// overflow IIN (IIN2.3) raised until confirmed reads have made room again.

public struct Event: Sendable, Equatable {
    public var id: UInt64
    public var type: PointType
    public var index: Int
    /// In DNP3 units (scaled); 1 or 0 for a binary.
    public var value: Double
    public var online: Bool
    /// DNP3 time (ms since 1970 UTC) when the change was seen.
    public var timeMs: UInt64
    public var eventClass: UInt8
}

public struct EventBuffers: Sendable, Equatable {
    /// Capacity of classes 1, 2 and 3.
    public let capacity: [Int]
    public private(set) var events: [Event] = []
    public private(set) var overflow = false
    public private(set) var dropped = 0

    public init(capacity: [Int] = [100, 100, 100]) {
        precondition(capacity.count == 3 && capacity.allSatisfy { $0 > 0 }, "event buffer capacity: three classes, each above 0")
        self.capacity = capacity
    }

    public func count(class c: UInt8) -> Int { events.reduce(0) { $0 + ($1.eventClass == c ? 1 : 0) } }

    public mutating func add(_ e: Event) {
        guard (1...3).contains(e.eventClass) else { return }
        if count(class: e.eventClass) >= capacity[Int(e.eventClass) - 1], let oldest = events.firstIndex(where: { $0.eventClass == e.eventClass }) {
            events.remove(at: oldest)
            overflow = true
            dropped += 1
        }
        events.append(e)
    }

    /// Removes confirmed events; the overflow clears once every class has room again.
    public mutating func remove(_ ids: Set<UInt64>) {
        events.removeAll { ids.contains($0.id) }
        if overflow, (1...3).allSatisfy({ count(class: UInt8($0)) < capacity[$0 - 1] }) { overflow = false }
    }
}
