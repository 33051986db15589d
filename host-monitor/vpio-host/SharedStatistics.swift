import DeviceSharing
import Foundation
import HostMonitor
import PacketBackend

/// What vpio-host reports for a shared device: each guest's counters, and the switches.
struct SharedStatistics: Encodable {
    struct Guest: Encodable {
        var host: HostStatistics
        var frames: FrameDemux.Counters
        var switchesIn: Int
        var switchesOut: Int
        /// Held accesses' waits, in microseconds: count, median, 90th and 99th percentile, maximum.
        var holds: Percentiles
    }

    struct Percentiles: Encodable {
        var count: Int
        var p50: Double
        var p90: Double
        var p99: Double
        var max: Double

        init(_ durations: [Duration]) {
            let us = durations.map { $0 / .microseconds(1) }.sorted()
            func at(_ q: Double) -> Double { us.isEmpty ? 0 : us[min(us.count - 1, Int(Double(us.count - 1) * q))] }
            count = us.count
            p50 = at(0.5)
            p90 = at(0.9)
            p99 = at(0.99)
            max = us.last ?? 0
        }
    }

    struct Switches: Encodable {
        var total: Int
        var byReason: [String: Int]
        /// Device accesses per switch (save and restore): mean and maximum.
        var accessesMean: Double
        var accessesMax: Int
        /// Microseconds per switch (save and restore): median and maximum.
        var microsecondsMedian: Double
        var microsecondsMax: Double
        /// Switches due that the evidence refused, by obstacle.
        var refused: [String: Int]
    }

    var guests: [String: Guest]
    var switches: Switches
    var unclaimedFrames: Int
    /// Frames a guest transmitted with another source address than its own, dropped.
    var spoofedFrames: Int
    var wire: TapPeer.Counters?

    init(shared: SharedDevice, wire: TapPeer.Counters?) {
        let records = shared.switcher.switches
        var guests: [String: Guest] = [:]
        for guest in shared.guests {
            let host = HostStatistics(server: guest.server, nic: nil, peer: nil, agent: guest.agent, enforcement: guest.enforcer.report,
                                      wideAccessesIgnored: guest.ledger.wideAccessesIgnored)
            guests[guest.spec.name] = Guest(host: host, frames: shared.demux.counters[guest.index],
                                            switchesIn: records.filter { $0.to == guest.index }.count,
                                            switchesOut: records.filter { $0.from == guest.index }.count,
                                            holds: Percentiles(shared.switcher.holdTimes(of: guest.index)))
        }
        self.guests = guests
        let accesses = records.map(\.accesses)
        let times = Percentiles(records.map(\.duration))
        switches = Switches(total: records.count, byReason: Dictionary(grouping: records, by: \.reason.rawValue).mapValues(\.count),
                            accessesMean: accesses.isEmpty ? 0 : Double(accesses.reduce(0, +)) / Double(accesses.count),
                            accessesMax: accesses.max() ?? 0, microsecondsMedian: times.p50, microsecondsMax: times.max,
                            refused: shared.switcher.refused)
        unclaimedFrames = shared.demux.unclaimed
        spoofedFrames = shared.spoofedFrames
        self.wire = wire
    }

    var summary: [String] {
        let reasons = switches.byReason.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        var lines = ["shared: switches=\(switches.total) \(reasons) accesses/switch=\(Int(switches.accessesMean)) "
                     + "us/switch=\(Int(switches.microsecondsMedian)) (max \(Int(switches.microsecondsMax))) spoofed_frames=\(spoofedFrames) "
                     + "refused=\(switches.refused)"]
        for (name, guest) in guests.sorted(by: { $0.key < $1.key }) {
            lines.append("guest \(name): \(guest.host.summary) switches_in=\(guest.switchesIn) held=\(guest.holds.count) "
                         + "hold_p50=\(Int(guest.holds.p50))us hold_max=\(Int(guest.holds.max))us frames_queued=\(guest.frames.queued) "
                         + "frames_dropped=\(guest.frames.dropped)")
        }
        return lines
    }
}
