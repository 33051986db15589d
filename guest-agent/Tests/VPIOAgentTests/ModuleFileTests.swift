import Foundation
import Testing
@testable import VPIOAgentCore

/// Compressed modules and the modinfo-style lookup. The compressed files are the provisioned Debian
/// modules compressed by the same tools distributions use (xz, zstd, gzip), in the options kmod's
/// build and Debian's kernel packaging use (xz --check=crc32, zstd -19).
@Suite struct ModuleFileTests {
    static let compressors: [(ModuleImage.Compression, String, [String])] = [
        (.xz, ".ko.xz", ["xz", "--check=crc32", "--lzma2=dict=1MiB", "-c"]),
        (.zstd, ".ko.zst", ["zstd", "-q", "-19", "-c"]),
        (.gzip, ".ko.gz", ["gzip", "-9", "-n", "-c"]),
    ]

    /// `tool` run on `input`, its standard output written to `output`.
    static func compress(_ input: String, with tool: [String], to output: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = tool + [input]
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(tool[0]) failed on \(input)")
    }

    static func scratchDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "vpio-modules-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test(.enabled(if: modulesPresent, "needs cache/kernel/modules (vpio provision)"), arguments: ["8390", "ne2k-pci"])
    func compressedModuleScansLikeTheFile(name: String) throws {
        let plain = try SiteScanner.scan(path: "\(modulesDirectory)/\(name).ko")
        #expect(plain.compression == .none)
        let scratch = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        for (compression, suffix, tool) in Self.compressors {
            let path = "\(scratch)/\(name)\(suffix)"
            try Self.compress("\(modulesDirectory)/\(name).ko", with: tool, to: path)
            let scan = try SiteScanner.scan(path: path)
            #expect(scan.compression == compression)
            #expect(scan.module == plain.module)
            // ne2k-pci has a srcversion (it declares MODULE_VERSION), 8390 only its vermagic.
            #expect(scan.srcversion == plain.srcversion)
            #expect(scan.vermagic == plain.vermagic && scan.vermagic != nil)
            #expect(scan.sites == plain.sites, "\(suffix): the decompressed module must give the same sites")
            #expect(!scan.sites.isEmpty)
        }
    }

    @Test(.enabled(if: modulesPresent, "needs cache/kernel/modules (vpio provision)"))
    func truncatedOrCorruptCompressedModulesAreClearErrors() throws {
        let scratch = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        for (compression, suffix, tool) in Self.compressors {
            let path = "\(scratch)/8390\(suffix)"
            try Self.compress("\(modulesDirectory)/8390.ko", with: tool, to: path)
            let whole = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            var corrupt = whole
            corrupt[corrupt.count / 2] ^= 0xFF
            let cases = [("truncated", Array(whole.prefix(whole.count / 2))), ("corrupt", corrupt), ("magic only", Array(whole.prefix(6)))]
            for (what, bytes) in cases {
                #expect(throws: ScanError.self, "\(suffix) \(what) must not decompress") {
                    _ = try ModuleImage.decompress(bytes, compression, path: path)
                }
            }
        }
    }

    @Test func compressionIsTheMagicsNotTheName() {
        #expect(ModuleImage.Compression.detect([0x7F, 0x45, 0x4C, 0x46, 2, 1]) == .none)
        #expect(ModuleImage.Compression.detect([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00, 0]) == .xz)
        #expect(ModuleImage.Compression.detect([0x28, 0xB5, 0x2F, 0xFD, 0x24]) == .zstd)
        #expect(ModuleImage.Compression.detect([0x1F, 0x8B, 8]) == .gzip)
        #expect(ModuleImage.Compression.detect([0xFD, 0x37]) == .none)
        #expect(ModuleImage.Compression.detect([]) == .none)
    }

    @Test func decompressionIsBoundedAndRejectsGarbage() throws {
        // 1 MiB of zeros in xz is ~200 bytes: a bomb of 300 MiB would be ~60 KB; the limit stops it.
        #expect(throws: ScanError.self) { _ = try ModuleImage.decompress([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00] + Array(repeating: 0, count: 64), .xz, path: "x") }
        #expect(throws: ScanError.self) { _ = try ModuleImage.decompress(Array(repeating: 0x41, count: 100), .zstd, path: "x") }
        #expect(throws: ScanError.self) { _ = try ModuleImage.decompress([], .gzip, path: "x") }
    }

    @Test func decompressionBombStopsAtTheLimit() throws {
        let scratch = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let zeros = "\(scratch)/zeros"
        _ = FileManager.default.createFile(atPath: zeros, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: zeros))
        try handle.truncate(atOffset: UInt64(ModuleImage.decompressedLimit + (1 << 20)))
        try handle.close()
        try Self.compress(zeros, with: ["zstd", "-q", "-1", "-c"], to: zeros + ".zst")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: zeros + ".zst")))
        #expect(bytes.count < 1 << 20)
        do {
            _ = try ModuleImage.decompress(bytes, .zstd, path: "bomb")
            Issue.record("a file decompressing past the limit was accepted")
        } catch {
            #expect("\(error)".contains("more than 256 MiB"))
        }
    }

    static let modulesDep = """
        kernel/drivers/net/ethernet/8390/8390.ko.xz:
        kernel/drivers/net/ethernet/8390/ne2k-pci.ko.xz: kernel/drivers/net/ethernet/8390/8390.ko.xz
        kernel/drivers/net/ethernet/realtek/8139too.ko.zst: kernel/drivers/net/mii.ko.zst

        """

    @Test func modulesDepNamesEveryModuleByItsKernelName() {
        let index = ModuleLocator.index(modulesDep: Self.modulesDep)
        #expect(index["ne2k_pci"] == "kernel/drivers/net/ethernet/8390/ne2k-pci.ko.xz")
        #expect(index["8390"] == "kernel/drivers/net/ethernet/8390/8390.ko.xz")
        #expect(index["8139too"] == "kernel/drivers/net/ethernet/realtek/8139too.ko.zst")
        #expect(index.count == 3)
    }

    @Test func lookupFollowsModulesDepThenTheTreeThenTheTestLayout() throws {
        let present: Set<String> = ["/m/6.12.0-1-amd64/kernel/drivers/net/ethernet/8390/ne2k-pci.ko.xz",
                                    "/m/6.1.0-2-amd64/kernel/drivers/net/ethernet/8390/8390.ko.zst", "/m/ne2k-pci.ko"]
        let newer = ModuleLocator(root: "/m", release: "6.12.0-1-amd64") { present.contains($0) }
        #expect(try newer.locate("ne2k-pci", modulesDep: Self.modulesDep) == "/m/6.12.0-1-amd64/kernel/drivers/net/ethernet/8390/ne2k-pci.ko.xz")
        #expect(throws: AgentLookupError.self) { try newer.locate("8390", modulesDep: Self.modulesDep) } // listed, file absent
        #expect(throws: AgentLookupError.self) { try newer.locate("8139cp", modulesDep: Self.modulesDep) } // not listed: built in?
        let older = ModuleLocator(root: "/m", release: "6.1.0-2-amd64") { present.contains($0) }
        #expect(try older.locate("8390", modulesDep: nil) == "/m/6.1.0-2-amd64/kernel/drivers/net/ethernet/8390/8390.ko.zst")
        #expect(try older.locate("ne2k-pci", modulesDep: nil) == "/m/ne2k-pci.ko")
    }

    @Test func theScannedFileMustBeTheLoadedModule() {
        var scan = SiteScanner.ModuleScan(module: "ne2k_pci", path: "/x/ne2k-pci.ko.xz", sites: [], scannedSections: [],
                                          skippedSections: [], srcversion: "AB12", vermagic: "6.12.0-1-amd64 SMP preempt mod_unload modversions ")
        #expect(scan.mismatch(loadedSrcversion: "AB12", release: "6.1.0-2-amd64") == nil)
        #expect(scan.mismatch(loadedSrcversion: "CD34", release: "6.12.0-1-amd64")?.contains("not the loaded ne2k_pci") == true)
        #expect(scan.mismatch(loadedSrcversion: nil, release: "6.12.0-1-amd64") == nil)
        #expect(scan.mismatch(loadedSrcversion: nil, release: "6.1.0-2-amd64")?.contains("built for kernel 6.12.0-1-amd64") == true)
        scan.vermagic = nil
        scan.srcversion = nil
        #expect(scan.mismatch(loadedSrcversion: nil, release: "6.1.0-2-amd64") != nil)
    }
}

/// sd_notify without libsystemd, against a datagram socket of the test's own.
@Suite struct ServiceNotifierTests {
    @Test func outsideSystemdNothingIsSent() {
        #expect(!ServiceNotifier(environmentValue: nil).isActive)
        #expect(!ServiceNotifier(environmentValue: "relative/path").isActive)
        #expect(!ServiceNotifier(environmentValue: "/" + String(repeating: "x", count: 200)).isActive)
        #expect(!ServiceNotifier(environmentValue: nil).notify("READY=1"))
    }

    @Test func readyReachesTheSocket() throws {
        let path = NSTemporaryDirectory() + "vpio-notify-\(getpid())"
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd); unlink(path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        #expect(ServiceNotifier(environmentValue: path).notify("READY=1\nSTATUS=ok"))
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        #expect(n > 0 && String(decoding: buffer.prefix(max(0, n)), as: UTF8.self) == "READY=1\nSTATUS=ok")
    }
}
