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

/// The vfio-user server: one client at a time on a listening UNIX socket, everything on one thread
/// in one poll loop, so the device model needs no locks and sees accesses in wire order.
public final class VFIOUserServer {
    public let endpoint: PCIEndpoint
    public let limits: ServerLimits
    let logger: Logger
    public private(set) var session: Session?
    public private(set) var connections = 0
    /// Counters of sessions that ended, summed.
    public private(set) var pastSessions = Session.Counters()

    public init(endpoint: PCIEndpoint, limits: ServerLimits = ServerLimits(), logger: Logger) {
        self.endpoint = endpoint
        self.limits = limits
        self.logger = logger
    }

    /// Messages, rejections and DMA map calls over all connections so far.
    public var sessionCounters: Session.Counters {
        var total = pastSessions
        if let c = session?.counters {
            total.messages += c.messages
            total.rejected += c.rejected
            total.dmaMaps += c.dmaMaps
            total.dmaUnmaps += c.dmaUnmaps
        }
        return total
    }

    /// Serves until `shouldStop` returns true (checked at least every `tickMilliseconds`).
    public func run(listener: UnixSocket, sources: [PollSource], tickMilliseconds: Int32 = 200,
                    shouldStop: () -> Bool) throws {
        while !shouldStop() {
            try runOnce(listener: listener, sources: sources, timeoutMilliseconds: tickMilliseconds)
        }
        if let session { end(session, reason: "server stopping") }
    }

    /// What one poll entry stands for.
    private enum Ready {
        case listener, connection(Session), resample(Session), source(PollSource)
    }

    /// One poll round: waits up to `timeoutMilliseconds` (less when a stalled client's bound falls
    /// due sooner), handles what is ready, then closes a client stuck past its bound. Runs once per
    /// guest access, so it builds two small arrays and no closures.
    public func runOnce(listener: UnixSocket, sources: [PollSource], timeoutMilliseconds: Int32) throws {
        var entries: [(FileDescriptor, Poll.Events)] = []
        var meaning: [Ready] = []
        entries.reserveCapacity(2 + sources.count)
        meaning.reserveCapacity(2 + sources.count)
        if let session {
            if let socket = session.channel.stream as? UnixSocket {
                entries.append((socket.descriptor, session.channel.hasQueuedReplies ? .writable : .readable))
                meaning.append(.connection(session))
            }
            if let unmask = session.unmaskEvent {
                entries.append((unmask.descriptor, .readable))
                meaning.append(.resample(session))
            }
        } else {
            entries.append((listener.descriptor, .readable))
            meaning.append(.listener)
        }
        for source in sources where source.wantsReadable {
            entries.append((source.descriptor, .readable))
            meaning.append(.source(source))
        }
        let ready = try Poll.wait(entries, timeoutMilliseconds: min(timeoutMilliseconds, millisecondsToBound()))
        for (index, events) in ready.enumerated() where !events.isEmpty {
            switch meaning[index] {
            case .listener: try accept(listener)
            case let .connection(session): serve(session, events)
            case let .resample(session): session.resampled()
            case let .source(source): source.readable()
            }
        }
        closeStalledSession()
    }

    /// Serves a session on any byte stream (tests drive this directly with an in-memory stream).
    public func attach(stream: ByteStream) -> Session {
        let s = Session(stream: stream, endpoint: endpoint, limits: limits, logger: logger)
        session = s
        connections += 1
        logger.info("client connected", metadata: ["connection": "\(connections)"])
        return s
    }

    private func accept(_ listener: UnixSocket) throws {
        _ = attach(stream: try listener.accept())
    }

    /// Sends queued replies when the socket polled writable (or hung up: the send then fails and ends
    /// the session, instead of polling a dead socket until the bound), then serves what was received
    /// (and, when it polled readable or hung up, what it has now).
    private func serve(_ session: Session, _ events: Poll.Events) {
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

    /// Milliseconds until the connected client's wait bound falls due (a large value when it waits for nothing).
    private func millisecondsToBound() -> Int32 {
        guard let since = session?.channel.waitingSince else { return .max }
        let left = Duration.milliseconds(limits.messageWaitMilliseconds) - (ContinuousClock.now - since)
        return Int32(clamping: Int(max(0, (left / .milliseconds(1)).rounded(.up))))
    }

    /// A client stuck mid-message or not taking its replies for longer than the bound loses its
    /// connection (one log line); the loop and the device go on.
    private func closeStalledSession() {
        guard let session, let since = session.channel.waitingSince,
              ContinuousClock.now - since >= .milliseconds(limits.messageWaitMilliseconds) else { return }
        let what = session.channel.hasQueuedReplies ? "did not take its replies" : "left a message incomplete"
        end(session, reason: "client \(what) for \(limits.messageWaitMilliseconds) ms")
    }

    private func end(_ session: Session, reason: String) {
        session.close()
        (session.channel.stream as? UnixSocket)?.close()
        let c = session.counters
        pastSessions.messages += c.messages
        pastSessions.rejected += c.rejected
        pastSessions.dmaMaps += c.dmaMaps
        pastSessions.dmaUnmaps += c.dmaUnmaps
        self.session = nil
        logger.info("client disconnected", metadata: ["reason": "\(reason)", "messages": "\(c.messages)"])
    }
}
