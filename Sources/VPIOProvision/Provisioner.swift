import Foundation
import Supervision
import Logging

/// Provisions everything a run needs into one cache directory. Every step is idempotent: it is skipped
/// when its stamp file (`stamps/<step>.done`) holds the fingerprint of its current inputs.
///
/// Steps, in order: host packages, QEMU (host or trixie tree), guest kernel, keys, guest agent, its package,
/// guest tools, guest image, iPXE, the Debian guests asked for, served files.
public final class Provisioner {
    public let layout: CacheLayout
    public let progress: ProgressReporter
    let logger: Logger
    /// `apt-get update` runs at most once per provisioning.
    var aptUpdated = false

    public init(layout: CacheLayout, progress: ProgressReporter = ProgressReporter(), logger: Logger = Logger(label: "vpio.provision")) {
        self.layout = layout
        self.progress = progress
        self.logger = logger
    }

    /// What provisioning produced.
    public struct Result: Sendable {
        public var qemu: QEMUInstallation
        public var layout: CacheLayout
        public var servedSizes: [Int]
    }

    /// Runs every step. `servedSizes` are the sizes (bytes) of the pseudo-random files to serve;
    /// `debianSuites` the full Debian guests to build (each a debootstrap of a few minutes the first time).
    @discardableResult
    public func provision(servedSizes: [Int] = [ServedFiles.defaultSize], debianSuites: [DebianSuite] = []) throws -> Result {
        guard geteuid() == 0 else {
            throw StepError(step: "provision", reason: "must run as root (apt-get, debootstrap, mounts)")
        }
        let start = Date()
        progress.line("cache: \(layout.root.path)")
        try FileManager.default.createDirectory(at: layout.stamps, withIntermediateDirectories: true)

        let hostQEMU = QEMUInstallation.detectHost()
        try ensureHostPackages(needDebootstrap: hostQEMU == nil || !debianSuites.isEmpty)
        let qemu: QEMUInstallation
        if let hostQEMU {
            progress.line("QEMU… using \(hostQEMU)")
            qemu = hostQEMU
        } else {
            qemu = try ensureQEMUTree()
        }
        try ensureGuestKernel()
        try ensureKeys()
        try ensureGuestAgent()
        let package = try ensureAgentPackage()
        try ensureGuestTools()
        try ensureGuestImage()
        try ensureGuestIPXE()
        for suite in debianSuites {
            try ensureDebianGuest(suite, inputs: try DebianGuestInputs.standard(layout: layout, package: package))
        }
        for size in servedSizes { try ensureServedFile(size: size) }
        progress.line("ready (\(ProgressReporter.seconds(since: start)) total)")
        return Result(qemu: qemu, layout: layout, servedSizes: servedSizes)
    }

    /// Whether a run can start without provisioning: QEMU usable, and kernel, keys, image, the Debian
    /// guest `debian` (if any) and the served file of `servedSize` bytes present. Returns the reason when not.
    public static func readiness(of layout: CacheLayout, servedSize: Int, debian: DebianSuite? = nil) -> (qemu: QEMUInstallation?, missing: [String]) {
        var missing: [String] = []
        let qemu = QEMUInstallation.locate(in: layout)
        if qemu == nil { missing.append("QEMU >= 10.1 with vfio-user-pci (neither on the host nor in \(layout.qemuTree.path))") }
        let files: [(URL, String)] = [
            (layout.kernel, "guest kernel"), (layout.initramfs, "guest image"),
            (layout.agentBinary, "guest agent"), (layout.agentBPFObject, "guest agent BPF object"),
            (layout.ipxeKernel, "guest iPXE"), (layout.ipxeMarker, "iPXE completion marker"),
        ] + layout.guestTools.map { ($0, "guest tool") } + [
            (layout.hostKey, "dropbear host key"), (layout.authorizedKeys, "authorized_keys"),
            (layout.servedFile(size: servedSize), "served file"), (layout.servedChecksum(size: servedSize), "served file checksum"),
        ] + layout.modules.map { ($0, "guest module") } + debianFiles(layout: layout, suite: debian)
        for (url, what) in files where !FileManager.default.fileExists(atPath: url.path) {
            missing.append("\(what) (\(url.path))")
        }
        return (qemu, missing)
    }

    static func debianFiles(layout: CacheLayout, suite: DebianSuite?) -> [(URL, String)] {
        guard let suite else { return [] }
        let image = DebianGuestImage(layout: layout, suite: suite)
        return [(image.disk, "Debian \(suite.rawValue) disk"), (image.kernel, "Debian \(suite.rawValue) kernel"),
                (image.initrd, "Debian \(suite.rawValue) initrd"), (image.releaseFile, "Debian \(suite.rawValue) kernel release")]
    }

    /// The steps built from this repository whose inputs changed since they were built (an edited agent,
    /// guest tool or init script, and for the Debian guest `debian` its packaged files): a run would
    /// otherwise boot the old ones.
    public static func staleSteps(of layout: CacheLayout, debian: DebianSuite? = nil) -> [String] {
        guard let repository = layout.repository else { return [] }
        var current: [(step: String, what: String, fingerprint: String?)] = [
            ("agent", "guest agent", agentFingerprint(repository: repository)),
            ("tools", "guest tools", guestToolsFingerprint(repository: repository)),
            ("image", "guest image", try? GuestImage.standard(layout: layout).fingerprint()),
        ]
        if let debian {
            let inputs = DebianGuestInputs.cachedPackage(layout: layout).flatMap { try? DebianGuestInputs.standard(layout: layout, package: $0) }
            current.append(("debian-\(debian.rawValue)-disk", "Debian \(debian.rawValue) disk",
                            inputs.map { diskFingerprint(debian, inputs: $0, layout: layout) }))
        }
        return current.compactMap { entry in
            let stamp = try? String(contentsOf: stampURL(entry.step, in: layout), encoding: .utf8)
            return stamp == entry.fingerprint ? nil : "\(entry.what) (its inputs changed since it was built)"
        }
    }

    // MARK: - Stamps

    func stampURL(_ step: String) -> URL { Self.stampURL(step, in: layout) }
    static func stampURL(_ step: String, in layout: CacheLayout) -> URL { layout.stamps.appendingPathComponent("\(step).done") }

    /// Whether `step` finished with the same `fingerprint`.
    func isDone(_ step: String, fingerprint: String) -> Bool {
        guard let data = try? Data(contentsOf: stampURL(step)) else { return false }
        return String(decoding: data, as: UTF8.self) == fingerprint
    }

    func markDone(_ step: String, fingerprint: String) throws {
        try Data(fingerprint.utf8).write(to: stampURL(step), options: .atomic)
    }

    func clearStamp(_ step: String) {
        try? FileManager.default.removeItem(at: stampURL(step))
    }

    /// Runs `body` as a stamped step: skipped (and reported as cached) when already done with `fingerprint`.
    /// `outputs` must all exist for the step to count as done.
    func stampedStep(
        _ step: String, title: String, fingerprint: String, outputs: [URL] = [], _ body: () throws -> Void
    ) throws {
        let outputsPresent = outputs.allSatisfy { FileManager.default.fileExists(atPath: $0.path) }
        if outputsPresent, isDone(step, fingerprint: fingerprint) {
            progress.line("\(title)… cached")
            return
        }
        clearStamp(step)
        try progress.step(title) {
            try body()
            try markDone(step, fingerprint: fingerprint)
        }
    }

    // MARK: - apt

    /// `apt-get update`, once.
    func aptUpdateOnce(step: String) throws {
        guard !aptUpdated else { return }
        progress.line("  apt-get update")
        try Command.run(["apt-get", "update", "-qq"], step: step, environment: ["DEBIAN_FRONTEND": "noninteractive"])
        aptUpdated = true
    }
}

/// A small non-cryptographic fingerprint (FNV-1a, 64 bit) for stamp contents.
struct Fingerprint {
    private var hash: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
    }

    mutating func add(_ text: String) { add(Array(text.utf8)); add([0]) }

    /// Adds a file's path, size and modification time (cheap; for large inputs).
    mutating func addMetadata(of url: URL) {
        let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
        let size = (attributes?[.size] as? NSNumber)?.int64Value ?? -1
        let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? -1
        add("\(url.path) \(size) \(modified)")
    }

    /// Adds a file's whole content (for small inputs).
    mutating func addContent(of url: URL) {
        add(url.path)
        if let data = try? Data(contentsOf: url) { add(data) } else { add("<missing>") }
    }

    var value: String { String(hash, radix: 16) }
}
