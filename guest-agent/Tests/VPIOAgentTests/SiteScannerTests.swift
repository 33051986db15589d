import Foundation
import CVPIOAgentShim
import Glibc
import Testing
@testable import VPIOAgentCore

/// The repository root (tests run from anywhere): four levels above this file.
let repositoryRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(4) // guest-agent/Tests/VPIOAgentTests/<file>
    return parts.joined(separator: "/")
}()

let modulesDirectory = (getenv("VPIO_CACHE").map { String(cString: $0) + "/kernel/modules" }) ?? repositoryRoot + "/cache/kernel/modules"

let modulesPresent = access(modulesDirectory + "/ne2k-pci.ko", R_OK) == 0 && access(modulesDirectory + "/8390.ko", R_OK) == 0

@Suite struct SiteScannerTests {
    @Test func moduleNames() {
        #expect(SiteScanner.moduleName(forFile: "/lib/modules/ne2k-pci.ko") == "ne2k_pci")
        #expect(SiteScanner.moduleName(forFile: "8390.ko") == "8390")
    }

    @Test func syntheticBytes() {
        // mov %edx,... ; in (%dx),%al ; out %al,(%dx) ; 66 ef (out %ax) ; f3 6d (rep insl) ; 66 f3 6d (rep insw)
        let bytes: [UInt8] = [0x89, 0xc2, 0xec, 0xee, 0x66, 0xef, 0xf3, 0x6d, 0x66, 0xf3, 0x6d, 0x6d, 0xc3]
        let sites = SiteScanner.candidates(in: bytes, functions: [(0, bytes.count, "f")], section: ".text", module: "m")
        let summary = sites.map { "\($0.kind)@\($0.offset)w\($0.width)" }
        // The lone 0x6d at 11 (no rep) is not a candidate.
        #expect(summary == ["in@2w1", "post@3w1", "out@3w1", "out@4w2", "ins@6w4", "ins@8w2"])
        #expect(sites[3].fallbackOffsets == [5])
        #expect(sites[5].fallbackOffsets == [9])
        let numbered = SiteScanner.assignIDs([.init(module: "m", path: "", sites: sites, scannedSections: [], skippedSections: [], srcversion: nil)])
        #expect(numbered[0].pair == 1 && numbered[1].pair == 0)
    }

    @Test(.enabled(if: modulesPresent, "needs cache/kernel/modules (vpio provision)"))
    func realModules() throws {
        let ne2k = try SiteScanner.scan(path: modulesDirectory + "/ne2k-pci.ko")
        let core = try SiteScanner.scan(path: modulesDirectory + "/8390.ko")
        #expect(ne2k.module == "ne2k_pci" && core.module == "8390")
        #expect(ne2k.srcversion != nil)
        let sites = SiteScanner.assignIDs([ne2k, core])
        let warm = sites.filter { !$0.cold }
        let cold = sites.filter(\.cold)
        print("candidates=\(sites.count) warm=\(warm.count) cold=\(cold.count) ne2k=\(ne2k.sites.count) 8390=\(core.sites.count)")
        for kind in [SiteKind.portIn, .portOut, .stringIn, .stringOut, .afterIn] {
            print("  \(kind): \(sites.filter { $0.kind == kind }.count)")
        }
        // The probe experiment (objdump) found 210 non-cold sites incl. post sites; a byte scan finds those
        // and some bytes that only look like port instructions (the kernel refuses those with EILSEQ).
        #expect(warm.count >= 210)
        #expect(warm.count < 300)
        #expect(!cold.isEmpty)
        #expect(cold.allSatisfy { $0.function.contains(".cold") })
        // Known sites from the objdump listing (probes/ebpf/sites.txt).
        #expect(sites.contains { $0.function == "ne2k_pci_block_output" && $0.offset == 0x5f && $0.kind == .portOut })
        #expect(sites.contains { $0.function == "ne2k_pci_block_output" && $0.offset == 0xb8 && $0.kind == .stringOut && $0.width == 2 })
        #expect(sites.contains { $0.function == "ne2k_pci_block_output" && $0.offset == 0x14a && $0.kind == .stringOut && $0.width == 4 })
        #expect(sites.contains { $0.function == "ne2k_pci_reset_8390" && $0.offset == 0x24 && $0.kind == .afterIn })
        #expect(sites.count <= Int(VPIO_AGENT_MAX_SITES))
    }

    /// The objdump-based site list of the eBPF experiment (shared/probes/ebpf/sites.txt, committed as a
    /// fixture: objdump of the same Debian 12 modules provisioning fetches).
    static let objdumpSites = readFile(URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/objdump-sites.txt").path)

    @Test(.enabled(if: modulesPresent, "needs cache/kernel/modules (vpio provision)"))
    func objdumpSitesAreAllFound() throws {
        // Every site of the probe's objdump-based list is a candidate (the byte scan misses none).
        let text = try #require(Self.objdumpSites)
        let sites = SiteScanner.assignIDs([try SiteScanner.scan(path: modulesDirectory + "/ne2k-pci.ko"),
                                           try SiteScanner.scan(path: modulesDirectory + "/8390.ko")])
        var missing: [String] = []
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count >= 5, let offset = Int(f[2].dropFirst(2), radix: 16) else { continue }
            let kind = String(f[3])
            if !sites.contains(where: { $0.function == f[1] && ($0.offset == offset || $0.fallbackOffsets.contains(offset)) && $0.kind.description == kind }) {
                missing.append(String(line))
            }
        }
        #expect(missing.isEmpty, "\(missing)")
    }
}

let rtl8139ModulePresent = access(modulesDirectory + "/8139too.ko", R_OK) == 0

@Suite struct AccessorCallTests {
    @Test func callsAndTailJumpsToTheAccessors() {
        // f: call ioread8 ; call iowrite32 ; call printk ; jmp ioread16 ; mov (a relocation not after e8/e9)
        let bytes: [UInt8] = [0xE8, 0, 0, 0, 0, 0xE8, 0, 0, 0, 0, 0xE8, 0, 0, 0, 0, 0xE9, 0, 0, 0, 0, 0x8B, 0x05, 0, 0, 0, 0]
        let relocations: [(offset: Int, type: UInt32, symbol: String)] = [
            (1, 4, "ioread8"), (6, 4, "iowrite32"), (11, 4, "_printk"), (16, 2, "ioread16"), (22, 4, "ioread32"), (6, 11, "iowrite8"),
        ]
        let sites = SiteScanner.accessorCalls(relocations, in: bytes, functions: [(0, bytes.count, "f")], section: ".text", module: "m")
        #expect(sites.map { "\($0.kind)@\($0.offset)w\($0.width)" } == ["call-read@0w1", "call-write@5w4", "call-read@15w2"])
    }

    /// Every iomap call objdump finds in Debian's 8139too is a site, and nothing else is: objdump is the
    /// oracle, read at test time from the same file.
    @Test(.enabled(if: rtl8139ModulePresent && access("/usr/bin/objdump", X_OK) == 0, "needs cache/kernel/modules/8139too.ko (vpio provision) and objdump"))
    func theRealDriversCallsAreAllFound() throws {
        let path = modulesDirectory + "/8139too.ko"
        let scan = try SiteScanner.scan(path: path, source: .accessorCalls)
        #expect(scan.module == "8139too")
        let listing = try output(of: ["/usr/bin/objdump", "-dr", "--no-show-raw-insn", path])
        // "  f8: R_X86_64_PLT32	ioread8-0x4" inside "<function>:" blocks, whose start address is on the header line.
        var expected: [String] = []
        var function = "", start = 0
        for line in listing.split(separator: "\n") {
            if line.hasSuffix(">:"), let open = line.firstIndex(of: "<") {
                function = String(line[line.index(after: open)..<line.index(line.endIndex, offsetBy: -2)])
                start = Int(line.prefix { $0 != " " }, radix: 16) ?? 0
            } else if let range = line.range(of: #"R_X86_64_(PLT32|PC32)\s+io(read|write)(8|16|32)-0x4"#, options: .regularExpression) {
                let offset = Int(line.trimmingCharacters(in: .whitespaces).prefix { $0 != ":" }, radix: 16)! - 1
                let name = line[range].split(whereSeparator: { $0 == "\t" || $0 == " " }).last!.dropLast(4)
                expected.append("\(function)+\(offset - start) \(name.hasPrefix("ioread") ? "call-read" : "call-write")")
            }
        }
        let found = scan.sites.map { "\($0.function)+\($0.offset) \($0.kind)" }
        print("8139too: \(found.count) accessor sites (\(scan.sites.filter { $0.kind == .callWrite }.count) writes)")
        #expect(expected.count == 192, "Debian 12's 8139too has 192 accessor calls")
        #expect(Set(found) == Set(expected))
        #expect(found.count == expected.count)
    }
}

/// What argv prints on stdout (it must exit 0).
func output(of argv: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: argv[0])
    process.arguments = Array(argv.dropFirst())
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw AgentError("\(argv[0]) exited \(process.terminationStatus)") }
    return String(decoding: data, as: UTF8.self)
}
