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

    let servers: [(server: VFIOUserServer, listener: UnixSocket)]
    let sources: [PollSource]
    let tick: ServerLoopTick?

    public init(servers: [(VFIOUserServer, UnixSocket)], sources: [PollSource], tick: ServerLoopTick? = nil) {
        self.servers = servers.map { (server: $0.0, listener: $0.1) }
        self.sources = sources
        self.tick = tick
    }

    /// Serves until `shouldStop` returns true (checked at least every `tickMilliseconds`), then ends every
    /// connected client's session.
    public func run(tickMilliseconds: Int32 = 200, shouldStop: () -> Bool) throws {
        while !shouldStop() {
            try runOnce(timeoutMilliseconds: tickMilliseconds)
        }
        for (server, _) in servers { server.stop() }
    }

    /// One poll round: waits up to `timeoutMilliseconds` (less when a bound or the tick falls due
    /// sooner), handles what is ready, runs the tick, lets admitted held accesses go on, and closes a
    /// client stuck past its bound. Runs once per guest access, so it builds two small arrays.
    public func runOnce(timeoutMilliseconds: Int32) throws {
        var entries: [(FileDescriptor, Poll.Events)] = []
        var meaning: [Ready] = []
        for (server, listener) in servers {
            for (fd, events, ready) in server.pollEntries(listener: listener) {
                entries.append((fd, events))
                meaning.append(ready)
            }
        }
        for source in sources where source.wantsReadable {
            entries.append((source.descriptor, .readable))
            meaning.append(.source(source))
        }
        let bound = servers.map { $0.server.millisecondsToBound() }.min() ?? .max
        let timeout = min(timeoutMilliseconds, bound, tick?.millisecondsToNextTick ?? .max)
        let ready = try Poll.wait(entries, timeoutMilliseconds: timeout)
        for (index, events) in ready.enumerated() where !events.isEmpty {
            switch meaning[index] {
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
    }
}
