import DP8390
import NE2000Model

/// A way QEMU's ne2k_pci and our NE2000 are known to differ, with the behaviour each follows: what a
/// differential replay may show without it being a bug. Anything else it shows is one.
public struct DocumentedDivergence: Sendable {
    public let name: String
    /// What the datasheet says and what each side does, and why no driver depends on it.
    public let behaviour: String
    private let matches: @Sendable (Divergence) -> Bool

    public func covers(_ divergence: Divergence) -> Bool { matches(divergence) }

    /// Every documented divergence (README "Differential testing" lists the same).
    public static let all: [DocumentedDivergence] = [commandAfterReset, promReservedBytes]

    /// The first one that covers `divergence`, if any.
    public static func explaining(_ divergence: Divergence) -> DocumentedDivergence? {
        all.first { $0.covers(divergence) }
    }

    /// CR read after a reset, before the driver wrote it: ours 0x21, QEMU's what it held before.
    static let commandAfterReset = DocumentedDivergence(
        name: "CR after a reset",
        behaviour: "the DP8390 datasheet gives CR = 21h after a reset (STP: stopped; RD2: remote DMA aborted), which ours "
            + "reads back; QEMU's reset leaves its command register as it was (0 at power-on) until the driver writes CR. "
            + "Both drivers write CR before depending on it.") { d in
        guard case let .read(ours, _) = d.what, d.register?.offset == CR.offset, d.register?.direction == .read else { return false }
        return ours == 0x21 && !d.context.commandWrittenSinceReset
    }

    /// PROM bytes between the station address (0–5, doubled: 0–11) and the 0x57 signature (28–31).
    static let promReservedBytes = DocumentedDivergence(
        name: "PROM bytes 12-27",
        behaviour: "the NE2000's 32-byte address PROM holds the station address in bytes 0-5 and 57h in 14-15, each "
            + "doubled (words 0-15); bytes 6-13 are reserved and no driver reads anything from them. Ours holds zeros "
            + "there, as QEMU does after its first reset; QEMU's reset doubles the PROM in place each time, so after a "
            + "second reset (its own at power-on, then the function reset) those words hold copies of the station address.") { d in
        guard case let .read(ours, _) = d.what, d.register.map({ BAR0.dataPort.contains(UInt64($0.offset)) }) == true,
              let remote = d.context.remote, remote.kind == .remoteRead, remote.start < 0x20 else { return false }
        let address = Int(remote.start) + remote.moved
        return ours == 0 && (12..<28).contains(address)
    }
}

extension ReplayReport {
    /// The divergences no documented one covers.
    public var undocumented: [Divergence] { divergences.filter { DocumentedDivergence.explaining($0) == nil } }
}
