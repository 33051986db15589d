import Foundation
import Supervision

/// Where everything provisioning makes lives: one cache directory, by default `<repo>/cache/`.
///
/// The layout is fixed so that a launcher or a benchmark can find each artefact without asking the
/// provisioner:
/// ```
/// cache/
///   stamps/<step>.done        one per finished step (its content fingerprints the step's inputs)
///   qemu/trixie/              debootstrap tree with QEMU from trixie-backports (when the host's is too old)
///   kernel/vmlinuz            guest kernel (Debian 12 linux-image-6.1.0-*-amd64)
///   kernel/modules/*.ko       8390.ko, ne2k-pci.ko, mii.ko, 8139too.ko
///   keys/host_key             dropbear host key for the peer's ssh server
///   keys/client_key           dropbear client key (copied into the guest image)
///   keys/root/.ssh/authorized_keys   bind-mounted over /root for the peer's dropbear
///   agent/vpio-agent          the guest agent (static Swift stdlib, libbpf/libelf linked in)
///   agent/vpio_agent.bpf.o    its BPF object
///   image/initrd.gz           guest initramfs (gzip'd newc cpio)
///   ipxe/ipxe.lkrn            the second guest driver: iPXE (Debian's ipxe package)
///   www/download-<N>.bin      served files, with download-<N>.bin.sha256 beside each
///   www/vpio-ipxe-done.txt    the marker an iPXE guest fetches after its download
/// ```
public struct CacheLayout: Sendable, Equatable {
    /// The cache directory.
    public var root: URL
    /// The repository (folder holding Package.swift); needed for files kept in the repo (the guest's init).
    public var repository: URL?

    public init(root: URL, repository: URL?) {
        self.root = root.standardizedFileURL
        self.repository = repository?.standardizedFileURL
    }

    /// Resolves the cache directory: `explicit` (from `--cache`), else `$VPIO_CACHE`, else `<repo>/cache`.
    public static func resolve(explicit: String? = nil) throws -> CacheLayout {
        let repository = findRepository()
        if let explicit, !explicit.isEmpty {
            return CacheLayout(root: URL(fileURLWithPath: explicit), repository: repository)
        }
        if let fromEnvironment = ProcessInfo.processInfo.environment["VPIO_CACHE"], !fromEnvironment.isEmpty {
            return CacheLayout(root: URL(fileURLWithPath: fromEnvironment), repository: repository)
        }
        guard let repository else {
            throw StepError(
                step: "locate cache",
                reason: "no folder holding Package.swift above the executable or the current directory; pass --cache DIR or set VPIO_CACHE")
        }
        return CacheLayout(root: repository.appendingPathComponent("cache"), repository: repository)
    }

    /// The nearest folder holding `Package.swift` above the running executable, else above the current directory.
    public static func findRepository() -> URL? {
        var starts: [URL] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            starts.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
        }
        starts.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        for start in starts {
            var dir = start.standardizedFileURL
            while true {
                if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
                let parent = dir.deletingLastPathComponent()
                if parent.path == dir.path { break }
                dir = parent
            }
        }
        return nil
    }

    public var stamps: URL { root.appendingPathComponent("stamps") }
    public var qemuTree: URL { root.appendingPathComponent("qemu/trixie") }
    public var kernelDirectory: URL { root.appendingPathComponent("kernel") }
    public var kernel: URL { kernelDirectory.appendingPathComponent("vmlinuz") }
    public var modulesDirectory: URL { kernelDirectory.appendingPathComponent("modules") }
    /// The guest modules, in load order.
    public var modules: [URL] { GuestKernel.moduleNames.map { modulesDirectory.appendingPathComponent($0) } }
    public var keysDirectory: URL { root.appendingPathComponent("keys") }
    public var hostKey: URL { keysDirectory.appendingPathComponent("host_key") }
    public var clientKey: URL { keysDirectory.appendingPathComponent("client_key") }
    /// A stand-in for /root for the peer's dropbear (holds `.ssh/authorized_keys`).
    public var peerHome: URL { keysDirectory.appendingPathComponent("root") }
    public var authorizedKeys: URL { peerHome.appendingPathComponent(".ssh/authorized_keys") }
    public var imageDirectory: URL { root.appendingPathComponent("image") }
    public var initramfs: URL { imageDirectory.appendingPathComponent("initrd.gz") }
    public var servedDirectory: URL { root.appendingPathComponent("www") }

    public var agentDirectory: URL { root.appendingPathComponent("agent") }
    /// The guest agent built for the guest (`Provisioner.ensureGuestAgent`).
    public var agentBinary: URL { agentDirectory.appendingPathComponent("vpio-agent") }
    public var agentBPFObject: URL { agentDirectory.appendingPathComponent("vpio_agent.bpf.o") }

    public var ipxeDirectory: URL { root.appendingPathComponent("ipxe") }
    public var ipxeKernel: URL { ipxeDirectory.appendingPathComponent("ipxe.lkrn") }
    public var ipxeMarker: URL { servedDirectory.appendingPathComponent(GuestIPXE.markerName) }

    /// The init script kept in the repository (`guest-agent/image/init`).
    public var initScript: URL? { repository?.appendingPathComponent("guest-agent/image/init") }
    /// The workloads both guest kinds run (`guest-agent/image/workloads.sh`, installed as /lib/vpio/workloads.sh).
    public var workloadScript: URL? { repository?.appendingPathComponent("guest-agent/image/workloads.sh") }

    /// The served file of `size` bytes and its checksum file.
    public func servedFile(size: Int) -> URL { servedDirectory.appendingPathComponent(ServedFiles.name(size: size)) }
    public func servedChecksum(size: Int) -> URL {
        servedDirectory.appendingPathComponent(ServedFiles.name(size: size) + ".sha256")
    }
}
