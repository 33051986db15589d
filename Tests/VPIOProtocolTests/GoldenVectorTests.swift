import Foundation
import Supervision
import Testing
import VPIOProtocol

/// The Swift mirror and the C header must produce the same bytes: both are checked against the
/// vectors in protocol/golden/, which the C program protocol/tests/golden.c writes from the header.
@Suite struct GoldenVectorTests {
    static let protocolDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("protocol")

    func golden(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: Self.protocolDirectory.appendingPathComponent("golden/\(name)")))
    }

    static let header = RingHeader(agentPID: 0x1234, head: 0x0102_0304_0506_0708, accessesSeen: 300_000,
                                   intentsWritten: 42, unseenSites: 3)
    static let records: [(String, RingRecord)] = [
        ("record-intent.bin", RingRecord(sequence: 1, site: 17, timeNanoseconds: 123_456_789,
                                         body: .dmaIntent(kind: .remoteRead, command: 0x0A, start: 0x4C00, count: 1514,
                                                          intentIndex: 0, accessIndex: 99))),
        ("record-state.bin", RingRecord(sequence: 2, timeNanoseconds: 5,
                                        body: .state(accesses: 1000, dmaIntents: 10, reusable: true, unsure: false, eventsLost: 2))),
        ("record-heartbeat.bin", RingRecord(sequence: 3, body: .heartbeat(uptimeNanoseconds: 2_000_000_000, accesses: 77))),
        ("record-error.bin", RingRecord(sequence: 4, body: .error(code: 5, detail: 6, text: "site refused"))),
        ("record-intent-bus.bin", RingRecord(sequence: 5, site: 41, timeNanoseconds: 987_654_321,
                                             body: .dmaIntent(kind: .busTransmit, command: 2, start: 0x3F8A_2000, count: 1514,
                                                              intentIndex: 7, accessIndex: 4242))),
    ]

    @Test func swiftEncodesTheGoldenBytes() throws {
        #expect(Self.header.encode() == (try golden("header.bin")))
        for (file, record) in Self.records {
            #expect(record.encode() == (try golden(file)), "\(file)")
        }
    }

    @Test func swiftDecodesTheGoldenBytes() throws {
        #expect(RingHeader(bytes: try golden("header.bin")) == Self.header)
        #expect(Self.header.isCompatible)
        for (file, record) in Self.records {
            #expect(try RingRecord(bytes: golden(file)) == record, "\(file)")
        }
    }

    @Test func malformedRecordsAreRejected() throws {
        var bytes = try golden("record-intent.bin")
        bytes[8] = 0x77
        #expect(throws: RingRecord.DecodeError.unknownType(0x77)) { try RingRecord(bytes: bytes) }
        bytes = try golden("record-intent.bin")
        bytes[24] = 9
        #expect(throws: RingRecord.DecodeError.unknownDMAKind(9)) { try RingRecord(bytes: bytes) }
        #expect(throws: RingRecord.DecodeError.wrongSize(63)) { try RingRecord(bytes: [UInt8](repeating: 0, count: 63)) }
        var garbage = [UInt8](repeating: 0xFF, count: 64)
        garbage[8] = 4
        garbage[9] = 0
        guard case let .error(_, _, text) = try RingRecord(bytes: garbage).body else {
            Issue.record("a type-4 record decoded as another kind")
            return
        }
        #expect(text.allSatisfy { $0 == "?" })
        #expect(RingHeader(bytes: [UInt8](repeating: 0, count: 255)) == nil)
        #expect(RingHeader(bytes: [UInt8](repeating: 0, count: 256))?.isCompatible == false)
    }

    /// A committed layout file as "field" -> offset (and "version" -> N).
    static func layoutTable(_ file: String) throws -> [String: Int] {
        let layout = try String(contentsOf: protocolDirectory.appendingPathComponent("golden/\(file)"), encoding: .utf8)
        return Dictionary(uniqueKeysWithValues: layout.split(separator: "\n").compactMap { line -> (String, Int)? in
            let parts = line.split(separator: " ")
            return parts.count >= 2 ? (String(parts[0]), Int(parts[1])!) : nil
        })
    }

    @Test func ringConstantsMatchTheHeader() throws {
        let table = try Self.layoutTable("ring-layout-v\(VPIORing.version).txt")
        #expect(table["version"] == Int(VPIORing.version))
        #expect(table["vpio_ring.records"] == VPIORing.pageSize)
        #expect(table["sizeof.vpio_ring"] == VPIORing.bytes)
        #expect(table["sizeof.vpio_record"] == VPIORing.recordSize)
        #expect(table["sizeof.vpio_ring_header"] == VPIORing.HeaderOffset.size)
        #expect(table["vpio_ring_header.head"] == VPIORing.HeaderOffset.head)
        #expect(table["vpio_ring_header.accesses_seen"] == VPIORing.HeaderOffset.accessesSeen)
        #expect(table["vpio_ring_header.intents_written"] == VPIORing.HeaderOffset.intentsWritten)
        #expect(table["vpio_ring_header.unseen_sites"] == VPIORing.HeaderOffset.unseenSites)
    }

    @Test func capabilityConstantsMatchTheHeader() throws {
        let table = try Self.layoutTable("capability-layout-v\(VPIOCapability.version).txt")
        #expect(table["version"] == Int(VPIOCapability.version))
        #expect(table["sizeof.vpio_capability"] == VPIOCapability.length)
        #expect(table["vpio_capability.status"] == VPIOCapability.Field.status)
        #expect(table["vpio_capability.command"] == VPIOCapability.Field.command)
        #expect(table["vpio_capability.page_count"] == VPIOCapability.Field.pageCount)
        #expect(table["vpio_capability.pages"] == VPIOCapability.Field.pages)
        #expect(table["vpio_capability.violations"] == VPIOCapability.Field.violations)
        #expect(table["vpio_capability.last_error"] == VPIOCapability.Field.lastError)
        #expect(table["vpio_capability.anomalies"] == VPIOCapability.Field.anomalies)
    }
}

/// Compiles protocol/tests/golden.c against the C header and checks it reproduces the committed
/// layouts and vectors: a layout change without a version bump (no new ring-layout-vN.txt or
/// capability-layout-vN.txt) fails here.
@Suite struct CHeaderTests {
    static func compiler() -> String? {
        ["/opt/swift/usr/bin/clang", "/usr/bin/clang", "/usr/bin/cc", "/usr/bin/gcc"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    func run(_ path: String, _ arguments: [String]) throws -> (Int32, String) {
        let completion = try ChildProcess.complete([path] + arguments, step: path)
        return (completion.status, completion.text)
    }

    @Test(.enabled(if: compiler() != nil, "no C compiler on this machine (looked for clang, cc, gcc)"))
    func cHeaderReproducesLayoutAndVectors() throws {
        let cc = try #require(Self.compiler())
        let dir = GoldenVectorTests.protocolDirectory
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("vpio-golden-\(getpid())")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let binary = work.appendingPathComponent("golden").path
        let (status, output) = try run(cc, ["-std=c11", "-Wall", "-Werror", "-I", dir.appendingPathComponent("include").path,
                                            dir.appendingPathComponent("tests/golden.c").path, "-o", binary])
        #expect(status == 0, "golden.c did not compile (a _Static_assert in the header fails?): \(output)")
        guard status == 0 else { return }

        try expectLayout(binary, "ring-layout", version: Int(VPIORing.version), bump: "VPIO_RING_VERSION")
        try expectLayout(binary, "capability-layout", version: Int(VPIOCapability.version), bump: "VPIO_CAP_VERSION")

        let (vstatus, _) = try run(binary, ["vectors", work.path])
        #expect(vstatus == 0)
        for file in ["header.bin", "record-intent.bin", "record-state.bin", "record-heartbeat.bin", "record-error.bin",
                     "record-intent-bus.bin"] {
            let fromC = try Data(contentsOf: work.appendingPathComponent(file))
            let committed = try Data(contentsOf: dir.appendingPathComponent("golden/\(file)"))
            #expect(fromC == committed, "\(file)")
        }
    }

    /// `golden KIND` must print the committed golden/KIND-vN.txt for the Swift mirror's version N.
    func expectLayout(_ binary: String, _ kind: String, version: Int, bump: String) throws {
        let (_, layout) = try run(binary, [kind])
        let printed = layout.split(separator: "\n").first.map(String.init) ?? ""
        #expect(printed == "version \(version)", "the C header and the Swift mirror disagree on the \(kind) version")
        let file = GoldenVectorTests.protocolDirectory.appendingPathComponent("golden/\(kind)-v\(version).txt")
        let expected = try? String(contentsOf: file, encoding: .utf8)
        #expect(layout == expected, "the \(kind) changed without a version bump: add golden/\(kind)-vN.txt with a new \(bump)")
    }
}
