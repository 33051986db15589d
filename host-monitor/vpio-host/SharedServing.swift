import ArgumentParser
import DeviceBus
import DeviceSharing
import Foundation
import HostMonitor
import Logging
import PacketBackend
import VFIOUserServer
import VPIOMonitor
import VPIOSystem

/// `--guest NAME=SOCKET[,mac=MAC][,mode=MODE]`.
struct GuestOption: ExpressibleByArgument {
    var name: String
    var socket: String
    var mac: String?
    var mode: Mode?

    init?(argument: String) {
        let parts = argument.split(separator: ",").map(String.init)
        guard let first = parts.first, let equals = first.firstIndex(of: "=") else { return nil }
        name = String(first[..<equals])
        socket = String(first[first.index(after: equals)...])
        guard !name.isEmpty, !socket.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else { return nil }
        for option in parts.dropFirst() {
            let pair = option.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { return nil }
            switch pair[0] {
            case "mac": guard MACAddress(pair[1]) != nil else { return nil }; mac = pair[1]
            case "mode": guard let m = Mode(rawValue: pair[1]) else { return nil }; mode = m
            default: return nil
            }
        }
    }
}

extension VPIOHost {
    /// One NE2000 for every --guest: one server loop over their sockets and the TAP.
    func serveShared(logger: Logger) throws {
        let specs = try guests.enumerated().map { index, guest in
            SharedGuestSpec(name: guest.name, mac: try guestMAC(guest, index: index), mode: guest.mode ?? mode,
                            recordPath: record.map { PerGuestFile.path($0, guest: guest.name) })
        }
        var policy = SharingPolicy()
        policy.holdBound = .milliseconds(holdBound)
        policy.quantumAccesses = quantumAccesses
        let wire = try netns.map { try placeTap(in: $0, name: tapName, address: peerAddress, logger: logger) }
        let shared = try SharedDevice(specs: specs, deviceMAC: MACAddress(mac)!.bytes, policy: policy,
                                      live: live || isatty(STDERR_FILENO) != 0, logger: logger) { wire?.transmit($0) }
        let peer = wire.map { TapPeer(wire: $0, device: shared.demux, logger: logger) }
        let listeners = try guests.map { try UnixSocket.listen(at: FilePath($0.socket)) }
        defer { for guest in guests { try? FileManager.default.removeItem(atPath: guest.socket) } }
        for (guest, spec) in zip(guests, specs) {
            logger.notice("listening", metadata: ["guest": "\(guest.name)", "socket": "\(guest.socket)", "mac": "\(MACAddress.text(spec.mac))"])
        }
        try ServerLoop(servers: Array(zip(shared.guests.map(\.server), listeners)), sources: peer.map { [$0] } ?? [],
                       tick: SharedDeviceTick(shared: shared), spinMicroseconds: spinMicroseconds).run { StopSignal.requested() }
        try finishShared(shared, peer: peer, logger: logger)
    }

    /// --mac with the guest's position added to its last byte, unless the guest names its own.
    func guestMAC(_ guest: GuestOption, index: Int) throws -> [UInt8] {
        if let own = guest.mac { return MACAddress(own)!.bytes }
        var bytes = MACAddress(mac)!.bytes
        bytes[5] &+= UInt8(index + 1)
        return bytes
    }


    func finishShared(_ shared: SharedDevice, peer: TapPeer?, logger: Logger) throws {
        let stats = SharedStatistics(shared: shared, wire: peer?.counters)
        for line in stats.summary { logger.notice("\(line)") }
        if let statsJson { try stats.writeJSON(to: statsJson) }
        for guest in shared.guests {
            try guest.ledger.finish(jsonPath: ledgerJson.map { PerGuestFile.path($0, guest: guest.spec.name) })
        }
    }
}
