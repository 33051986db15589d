import Logging
import VPIOSystem

/// Something else the server's loop waits on, such as the packet backend's TAP.
public protocol PollSource: AnyObject {
    var descriptor: FileDescriptor { get }
    /// Whether to wait for readability now. A packet source says no while the device has no room:
    /// that is how back-pressure reaches the peer.
    var wantsReadable: Bool { get }
    func readable()
}

/// The vfio-user server of one PCI function: one client at a time on its listening UNIX socket. A
/// `ServerLoop` runs one or more of them, with the other poll sources, on one thread, so the device
/// model needs no locks and sees accesses in wire order.
public final class VFIOUserServer {
    public let endpoint: PCIEndpoint
    public let limits: ServerLimits
    /// The guest RAM the connected client mapped for DMA (empty while none is): one table for the
    /// server's life, so a bus-master device is given it at construction.
    public let dma: DMAMapTable
    let admission: AccessAdmission?
    let logger: Logger
    public private(set) var session: Session?
    public private(set) var connections = 0
    /// Counters of sessions that ended, summed.
    public private(set) var pastSessions = Session.Counters()

    /// - Parameter admission: who decides whether this client's device accesses may reach the device
    ///   now (a shared device's switcher); nil: always.
    /// - Parameter dma: the table the sessions fill; by default a new one of `limits.maxDMAMaps` entries.
    public init(endpoint: PCIEndpoint, limits: ServerLimits = ServerLimits(), dma: DMAMapTable? = nil, admission: AccessAdmission? = nil,
                logger: Logger) {
        self.endpoint = endpoint
        self.limits = limits
        self.dma = dma ?? DMAMapTable(maxEntries: limits.maxDMAMaps)
        self.admission = admission
        self.logger = logger
    }

    /// Messages, rejections, DMA map calls and holds over all connections so far.
    public var sessionCounters: Session.Counters {
        var total = pastSessions
        if let c = session?.counters { total.add(c) }
        return total
    }

    /// Serves until `shouldStop` returns true (checked at least every `tickMilliseconds`): a loop of this
    /// server alone.
    public func run(listener: UnixSocket, sources: [PollSource], tickMilliseconds: Int32 = 200,
                    shouldStop: () -> Bool) throws {
        try ServerLoop(servers: [(self, listener)], sources: sources).run(tickMilliseconds: tickMilliseconds, shouldStop: shouldStop)
    }

    /// What this server waits on: its client (readable, or writable while replies queue; neither while
    /// a device access is held), its resample eventfd, or its listener when no client is connected.
    func addPollEntries(listener: UnixSocket, to round: inout ServerLoop.PollRound) {
        guard let session else { return round.add(listener.descriptor, .readable, .listener(self, listener)) }
        if let socket = session.channel.stream as? UnixSocket {
            let events: Poll.Events = session.channel.hasQueuedReplies ? .writable : session.isHolding ? [] : .readable
            round.add(socket.descriptor, events, .connection(self, session))
        }
        if let unmask = session.unmaskEvent { round.add(unmask.descriptor, .readable, .resample(session)) }
    }

    /// Serves a session on any byte stream (tests drive this directly with an in-memory stream).
    public func attach(stream: ByteStream) -> Session {
        let s = Session(stream: stream, endpoint: endpoint, dma: dma, limits: limits, admission: admission, logger: logger)
        session = s
        connections += 1
        logger.info("client connected", metadata: ["connection": "\(connections)"])
        return s
    }

    func accept(_ listener: UnixSocket) throws {
        _ = attach(stream: try listener.accept())
    }

    /// Sends queued replies when the socket polled writable (or hung up: the send then fails and ends
    /// the session, instead of polling a dead socket until the bound), then serves what was received
    /// (and, when it polled readable or hung up, what it has now).
    func serve(_ session: Session, _ events: Poll.Events) {
        let reading = !events.isDisjoint(with: [.readable, .hangup, .error, .invalid])
        do {
            if !events.isDisjoint(with: [.writable, .hangup, .error]) { try session.channel.flush() }
            if try !session.serveAvailable(reading: reading) {
                end(session, reason: "client closed the connection")
            }
        } catch {
            end(session, reason: "\(error)")
        }
    }

    /// A held device access goes on once admitted (after a switch), or fails at the server's bound.
    func retryHeld() {
        guard let session, session.isHolding else { return }
        serve(session, [])
    }

    /// Milliseconds until the connected client's wait bound falls due (a large value when it waits for
    /// nothing): its stalled message or untaken replies, or its held access.
    func millisecondsToBound() -> Int32 {
        var soonest = Int32.max
        if let since = session?.channel.waitingSince {
            soonest = min(soonest, Self.milliseconds(left: limits.messageWaitMilliseconds, since: since))
        }
        if let since = session?.holdingSince {
            soonest = min(soonest, Self.milliseconds(left: limits.holdMilliseconds, since: since))
        }
        return soonest
    }

    /// Whole milliseconds (rounded up, at least 0) until a bound of `bound` ms that began at `since` falls due.
    private static func milliseconds(left bound: Int, since: ContinuousClock.Instant) -> Int32 {
        let left = Duration.milliseconds(bound) - (ContinuousClock.now - since)
        return Int32(clamping: Int(max(0, (left / .milliseconds(1)).rounded(.up))))
    }

    /// A client stuck mid-message or not taking its replies for longer than the bound loses its
    /// connection (one log line); the loop and the device go on.
    func closeStalledSession() {
        guard let session, let since = session.channel.waitingSince,
              ContinuousClock.now - since >= .milliseconds(limits.messageWaitMilliseconds) else { return }
        let what = session.channel.hasQueuedReplies ? "did not take its replies" : "left a message incomplete"
        end(session, reason: "client \(what) for \(limits.messageWaitMilliseconds) ms")
    }

    func end(_ session: Session, reason: String) {
        session.close()
        (session.channel.stream as? UnixSocket)?.close()
        pastSessions.add(session.counters)
        self.session = nil
        logger.info("client disconnected", metadata: ["reason": "\(reason)", "messages": "\(session.counters.messages)"])
    }

    /// Ends the connected client's session (the server is stopping).
    func stop() {
        if let session { end(session, reason: "server stopping") }
    }
}

extension Session.Counters {
    mutating func add(_ other: Session.Counters) {
        messages += other.messages
        rejected += other.rejected
        dmaMaps += other.dmaMaps
        dmaUnmaps += other.dmaUnmaps
        held += other.held
        holdTimeouts += other.holdTimeouts
    }
}
