import AccessTrace
import DeviceBus
import DP8390
import NE2000
import NE2000Model
import Testing
import TraceReplay

/// The replay itself, without QEMU: ours against ours agrees, and every kind of disagreement — with
/// the recording or between the sides — is found and named.
@Suite struct DifferentialReplayTests {
    /// Our NE2000, with one register read changed: the candidate that disagrees where we say.
    final class OffByOne: NetworkBusDevice {
        let inner: NE2000
        let offset: UInt64
        init(offset: UInt64, outside: ReplayOutside) {
            inner = NE2000(mac: DifferentialTests.mac, interrupt: outside.line, transmit: outside.sink)
            self.offset = offset
        }
        var regionSizes: [UInt32: UInt32] { inner.regionSizes }
        func read(region: UInt32, offset: UInt64, width: AccessWidth) -> UInt32 {
            let value = inner.read(region: region, offset: offset, width: width)
            return offset == self.offset ? value ^ 1 : value
        }
        func write(region: UInt32, offset: UInt64, width: AccessWidth, value: UInt32) { inner.write(region: region, offset: offset, width: width, value: value) }
        func reset() { inner.reset() }
        var canReceiveFrame: Bool { inner.canReceiveFrame }
        func receive(frame: [UInt8]) -> Bool { inner.receive(frame: frame) }
    }

    @Test(arguments: TraceDifferentialTests.traces)
    func oursAgainstOursAgreesAndIsFaithful(name: String) throws {
        let report = DifferentialReplay.run(try TraceDifferentialTests.records(name), reference: TraceDifferentialTests.ours(),
                                            candidate: TraceDifferentialTests.ours())
        #expect(report.divergences.isEmpty && report.unfaithful.isEmpty, "\(report.divergences.prefix(3)) \(report.unfaithful.prefix(3))")
        #expect(report.reads > 10_000 && report.frames > 40 && report.transmitted > 20)
    }

    @Test func aChangedRecordedReadIsUnfaithfulThere() throws {
        var records = try TraceDifferentialTests.records("linux-download-ssh.vptrace")
        let index = try #require(records.indices.dropFirst(5000).first {
            if case .event(.access(let a)) = records[$0], a.direction == .read, a.offset == Page0Read.isr.rawValue { true } else { false }
        })
        guard case .event(.access(var access)) = records[index] else { return }
        access.value ^= 0x80
        records[index] = .event(.access(access))
        let report = DifferentialReplay.run(records, reference: TraceDifferentialTests.ours(), candidate: TraceDifferentialTests.ours())
        #expect(report.unfaithful.map(\.record) == [index])
        #expect(report.divergences.isEmpty)
    }

    @Test func aDroppedFrameIsUnfaithful() throws {
        var records = try TraceDifferentialTests.records("linux-download-ssh.vptrace")
        let index = try #require(records.indices.dropFirst(records.count / 2).first {
            if case .frameArrived = records[$0] { true } else { false }
        })
        records.remove(at: index)
        let report = DifferentialReplay.run(records, reference: TraceDifferentialTests.ours(), candidate: TraceDifferentialTests.ours())
        #expect(!report.unfaithful.isEmpty)
        #expect(report.unfaithful.allSatisfy { $0.record >= index })
    }

    @Test func aDifferentCandidateRegisterIsFoundAndNamed() throws {
        let outside = ReplayOutside()
        let candidate = ReplaySide(device: OffByOne(offset: UInt64(Page0Read.isr.rawValue), outside: outside), outside: outside)
        let report = DifferentialReplay.run(try TraceDifferentialTests.records("ipxe-download.vptrace"),
                                            reference: TraceDifferentialTests.ours(), candidate: candidate)
        #expect(report.unfaithful.isEmpty)
        let first = try #require(report.grouped.first)
        #expect(first.kind == "ISR (page 0 0x7) read", "\(report.grouped.map(\.kind))")
        #expect(report.undocumented.count == report.divergences.count, "no documented divergence covers a changed ISR")
    }

    static func read(_ offset: UInt8, ours: UInt32, theirs: UInt32, remote: FullModel.RemoteDMA? = nil, written: Bool = false) -> Divergence {
        Divergence(record: 1, access: 0, register: RegisterName(offset: offset, page: 0, direction: .read), what: .read(ours, theirs),
                   context: DivergenceContext(remote: remote, commandWrittenSinceReset: written))
    }

    @Test func documentedDivergencesCoverOnlyWhatTheySay() {
        #expect(DocumentedDivergence.explaining(Self.read(0, ours: 0x21, theirs: 0))?.name == "CR after a reset")
        #expect(DocumentedDivergence.explaining(Self.read(0, ours: 0x21, theirs: 0, written: true)) == nil)
        #expect(DocumentedDivergence.explaining(Self.read(0, ours: 0x22, theirs: 0)) == nil)
        let prom = { (moved: Int) in FullModel.RemoteDMA(kind: .remoteRead, start: 0, count: 32, moved: moved) }
        #expect(DocumentedDivergence.explaining(Self.read(0x10, ours: 0, theirs: 0x12, remote: prom(12)))?.name == "PROM bytes 12-27")
        #expect(DocumentedDivergence.explaining(Self.read(0x10, ours: 0, theirs: 0x12, remote: prom(6))) == nil, "the station address")
        #expect(DocumentedDivergence.explaining(Self.read(0x10, ours: 0, theirs: 0x12, remote: prom(28))) == nil, "the signature")
        #expect(DocumentedDivergence.explaining(Self.read(0x10, ours: 0x12, theirs: 0, remote: prom(12))) == nil)
        let ring = FullModel.RemoteDMA(kind: .remoteRead, start: 0x4600, count: 64, moved: 12)
        #expect(DocumentedDivergence.explaining(Self.read(0x10, ours: 0, theirs: 0x12, remote: ring)) == nil, "frame data")
    }

    @Test func registerNames() {
        #expect("\(RegisterName(offset: 0x07, page: 0, direction: .read))" == "ISR (page 0 0x7) read")
        #expect("\(RegisterName(offset: 0x07, page: 1, direction: .write))" == "CURR (page 1 0x7) write")
        #expect("\(RegisterName(offset: 0x00, page: 2, direction: .read))" == "CR read")
        #expect("\(RegisterName(offset: 0x05, page: 3, direction: .read))" == "page 3 0x5 read")
        #expect("\(RegisterName(offset: 0x12, page: 0, direction: .read))" == "data port read")
        #expect("\(RegisterName(offset: 0x1F, page: 1, direction: .read))" == "reset port read")
    }
}
