import Foundation
import Glibc
import Testing
import VPIOSystem

@Suite(.serialized) struct TapDeviceTests {
    /// Why TAP tests cannot run here, or nil if /dev/net/tun and CAP_NET_ADMIN are available.
    static let unavailableReason: String? = {
        do {
            _ = try TapDevice.create(name: "vpprobe\(getpid() % 100_000)")
            return nil
        } catch {
            return "TAP unavailable (\(error)); skipping"
        }
    }()

    static var available: Bool {
        if let reason = unavailableReason { print(reason) }
        return unavailableReason == nil
    }

    @Test func invalidNamesAreRefused() {
        for name in ["", "sixteen-bytes-xx", "a/b", "nul\u{0}"] {
            #expect(throws: TapDevice.InvalidName(name: name)) { try TapDevice.create(name: name) }
        }
    }

    @Test(.enabled(if: TapDeviceTests.available))
    func createHasNameAndNothingPending() throws {
        let name = "vptap\(getpid() % 100_000)"
        let tap = try TapDevice.create(name: name)
        #expect(tap.name == name)
        #expect(try tap.readFrame() == nil)
        let pattern = try TapDevice.create(name: "vpt%d")
        #expect(pattern.name.hasPrefix("vpt") && pattern.name != "vpt%d")
    }

    /// Moves the tap into a namespace of its own, brings it up there, and exchanges an ARP
    /// request and reply with the kernel through the descriptor (which keeps working after
    /// the move). Addresses are from TEST-NET-1 and never leave the namespace.
    @Test(.enabled(if: TapDeviceTests.available))
    func framesFlowThroughANamespace() throws {
        let pid = getpid()
        let name = "vpnet\(pid % 100_000)"
        let namespace = "vpiotest-sys-\(pid)"
        let tap = try TapDevice.create(name: name)
        try #require(try run(["ip", "netns", "add", namespace]).status == 0)
        defer { _ = try? run(["ip", "netns", "del", namespace]) }
        try #require(try run(["ip", "link", "set", name, "netns", namespace]).status == 0)
        try #require(try run(["ip", "-n", namespace, "addr", "add", "192.0.2.1/24", "dev", name]).status == 0)
        try #require(try run(["ip", "-n", namespace, "link", "set", name, "up"]).status == 0)

        let ourMAC: [UInt8] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02]
        let request: [UInt8] =
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] + ourMAC + [0x08, 0x06]  // Ethernet, ARP
            + [0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]  // Ethernet/IPv4, request
            + ourMAC + [192, 0, 2, 2]  // sender
            + [0, 0, 0, 0, 0, 0] + [192, 0, 2, 1]  // target: the namespace's address
        try tap.writeFrame(request)

        let rx = try run(["ip", "netns", "exec", namespace, "cat", "/sys/class/net/\(name)/statistics/rx_packets"])
        #expect(Int(rx.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 >= 1)

        // Other frames (IPv6 multicast reports) may come first; look for the ARP reply.
        var reply: [UInt8]?
        for _ in 0..<50 where reply == nil {
            _ = try Poll.wait([(tap.descriptor, .readable)], timeoutMilliseconds: 100)
            while let frame = try tap.readFrame() {
                if frame.count >= 42, frame[12...13] == [0x08, 0x06], frame[20...21] == [0x00, 0x02] {
                    reply = frame
                }
            }
        }
        let arp = try #require(reply)
        #expect(Array(arp[0..<6]) == ourMAC)  // addressed to us
        #expect(Array(arp[28..<32]) == [192, 0, 2, 1])  // "192.0.2.1 is at ..."
    }
}
