import CLibBPF
import CVPIOAgentShim
import Glibc

/// The BPF program's `events` ring buffer, read into an `EventCounter` (libbpf's ring_buffer): the
/// agent's poll loop and `vpio agent-cost` consume events the same way.
///
/// `@safe`: the libbpf handle never leaves the class. Its invariant: `buffer` is the ring_buffer made
/// in init, freed only in deinit; its callback context is `counter`, which this object keeps alive.
@safe public final class EventStream {
    public let counter: EventCounter
    private let buffer: OpaquePointer

    public init(eventsMapFD: Int32, counter: EventCounter) throws {
        self.counter = counter
        // SAFETY: the context is `counter`, retained by `self` for as long as `buffer` lives (freed in
        // deinit); the callback reads one vpio_event only when the record is at least that long.
        let context = unsafe Unmanaged.passUnretained(counter).toOpaque()
        guard let buffer = unsafe ring_buffer__new(eventsMapFD, { context, data, size in
            guard let context = unsafe context, let data = unsafe data, size >= MemoryLayout<vpio_event>.size else { return 0 }
            let counter = unsafe Unmanaged<EventCounter>.fromOpaque(context).takeUnretainedValue()
            counter.consume(unsafe data.loadUnaligned(as: vpio_event.self))
            return 0
        }, context, nil) else { throw AgentError("ring_buffer__new: \(errnoText(errno))") }
        unsafe self.buffer = buffer
    }

    deinit {
        // SAFETY: the handle invariant; nothing uses `buffer` after deinit.
        unsafe ring_buffer__free(buffer)
    }

    /// Waits up to `milliseconds` for events and consumes them; -errno on failure.
    public func poll(milliseconds: Int32) -> Int32 {
        // SAFETY: the handle invariant.
        unsafe ring_buffer__poll(buffer, milliseconds)
    }

    /// Consumes every event available now, without waiting.
    @discardableResult
    public func consume() -> Int32 {
        // SAFETY: the handle invariant.
        unsafe ring_buffer__consume(buffer)
    }
}
