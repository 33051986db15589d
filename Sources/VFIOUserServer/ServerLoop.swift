import VPIOSystem

/// What runs between poll rounds: a shared device's switcher (which may hand the device to a guest
/// whose access is held), the live ledger line.
public protocol ServerLoopTick: AnyObject {
    func afterRound()
    /// Milliseconds until it next has something to do (a hold bound falling due); nil: nothing pending.
    var millisecondsToNextTick: Int32? { get }
}

/// One poll loop on one thread for one or more vfio-user servers (one per guest of a shared device) and
/// the other sources (the TAP): handles what is ready, lets held accesses go on, closes stalled clients.
public final class ServerLoop {
    /// What one poll entry stands for.
    enum Ready {
        case listener(VFIOUserServer, UnixSocket), connection(VFIOUserServer, Session), resample(Session), source(PollSource)
    }

    /// One round's poll set and what each entry stands for. Kept between rounds, which run once per
    /// guest access, so a round allocates nothing.
    struct PollRound {
        var set = PollSet()
        var meaning: [Ready] = []

        mutating func removeAll() {
            set.removeAll()
            meaning.removeAll(keepingCapacity: true)
        }

        mutating func add(_ descriptor: FileDescriptor, _ events: Poll.Events, _ ready: Ready) {
            set.append(descriptor, events)
            meaning.append(ready)
        }
    }

    /// Where the loop's time went.
    public struct Counters: Codable, Equatable, Sendable {
        /// Poll rounds, and those that found something ready.
        public var rounds = 0
        public var busyRounds = 0
        /// Time from poll returning to the end of the round, summed: the loop's own share of every
        /// access it served (receiving, the device, replying), without its wait for the next one.
        public var handlingNanoseconds: Int64 = 0

        public init() {}
    }

    let servers: [(server: VFIOUserServer, listener: UnixSocket)]
    let sources: [PollSource]
    let tick: ServerLoopTick?
    /// How long the loop keeps polling without sleeping after a round that found something ready.
    let spin: Duration
    private var round = PollRound()
    public private(set) var counters = Counters()

    /// - Parameter spinMicroseconds: after a round that found something ready, poll without sleeping
    ///   for this long before sleeping in poll again (0: always sleep). Spinning saves the wakeup when
    ///   the next request comes soon, at the price of a CPU the client may need more (off by default).
    public init(servers: [(VFIOUserServer, UnixSocket)], sources: [PollSource], tick: ServerLoopTick? = nil,
                spinMicroseconds: Int = 0) {
        self.servers = servers.map { (server: $0.0, listener: $0.1) }
        self.sources = sources
        self.tick = tick
        spin = .microseconds(spinMicroseconds)
    }

    /// Serves until `shouldStop` returns true (checked at least every `tickMilliseconds`, and every round
    /// while spinning), then ends every connected client's session.
    public func run(tickMilliseconds: Int32 = 200, shouldStop: () -> Bool) throws {
        var spinUntil = ContinuousClock.now
        while !shouldStop() {
            let spinning = spin > .zero && ContinuousClock.now < spinUntil
            if try runOnce(timeoutMilliseconds: spinning ? 0 : tickMilliseconds), spin > .zero {
                spinUntil = .now + spin
            }
        }
        for (server, _) in servers { server.stop() }
    }

    /// One poll round: waits up to `timeoutMilliseconds` (less when a bound or the tick falls due
    /// sooner), handles what is ready, runs the tick, lets admitted held accesses go on, and closes a
    /// client stuck past its bound. Returns whether anything was ready.
    @discardableResult
    public func runOnce(timeoutMilliseconds: Int32) throws -> Bool {
        round.removeAll()
        var bound = Int32.max
        for (server, listener) in servers {
            server.addPollEntries(listener: listener, to: &round)
            bound = min(bound, server.millisecondsToBound())
        }
        for source in sources where source.wantsReadable {
            round.add(source.descriptor, .readable, .source(source))
        }
        let timeout = min(timeoutMilliseconds, bound, tick?.millisecondsToNextTick ?? .max)
        try round.set.wait(timeoutMilliseconds: timeout)
        let woke = ContinuousClock.now
        var anyReady = false
        for index in 0..<round.set.count {
            let events = round.set.events(at: index)
            guard !events.isEmpty else { continue }
            anyReady = true
            switch round.meaning[index] {
            case let .listener(server, listener): try server.accept(listener)
            case let .connection(server, session): server.serve(session, events)
            case let .resample(session): session.resampled()
            case let .source(source): source.readable()
            }
        }
        tick?.afterRound()
        for (server, _) in servers {
            server.retryHeld()
            server.closeStalledSession()
        }
        count(busy: anyReady, since: woke)
        return anyReady
    }

    private func count(busy: Bool, since woke: ContinuousClock.Instant) {
        counters.rounds += 1
        guard busy else { return }
        counters.busyRounds += 1
        let (seconds, attoseconds) = (ContinuousClock.now - woke).components
        counters.handlingNanoseconds += seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
