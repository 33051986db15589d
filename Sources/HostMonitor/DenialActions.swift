import DeviceSharing
import NE2000Model

/// What the host does to the device when it denies a start, through the register interface only, so the
/// driver sees a DMA that completed harmlessly rather than one that never ends (a polling driver waits
/// for RDC without a timeout):
/// - remote DMA: the running DMA is aborted, RBCR zeroed, and a zero-length command of the same kind
///   issued — the DP8390 completes it at once with RDC. The driver's data-port reads then return the
///   filler and its writes are dropped (no remote DMA runs); CR reads back the command it wrote.
/// - transmit: TPSR is pointed outside SRAM for the transmit, which the NE2000 aborts (TXE, TSR.ABT: the
///   driver handles a failed transmit), then put back. TBCR is left alone: a count the host changed
///   would stay changed under the models' shadows — and a shorter TBCR is not a safer one (a frame that
///   would run past SRAM is aborted; a shorter one is sent). The property test found exactly that.
enum DenialActions {
    static func endRemote(kind: DMAKind, command: UInt8, _ window: RegisterWindow) {
        let run = command & (CR.start | CR.stop)
        let rd: RemoteCommand = kind == .remoteRead ? .read : .write
        window.writePage0(.rbcr0, 0)
        window.writePage0(.rbcr1, 0)
        window.write(CR.offset, run | RemoteCommand.abort.rawValue << CR.remoteShift)
        window.write(CR.offset, run | rd.rawValue << CR.remoteShift)
        window.write(CR.offset, command & ~(CR.remoteMask | CR.transmit))
    }

    static func abortTransmit(command: UInt8, transmitPage: UInt8, _ window: RegisterWindow) {
        window.writePage0(.tpsr, 0)
        window.write(CR.offset, command)
        window.writePage0(.tpsr, transmitPage)
    }
}
