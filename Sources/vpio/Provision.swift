import ArgumentParser
import Foundation
import Supervision
import VPIOLaunch
import VPIOProvision

struct Provision: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch and build everything a run needs into the cache (idempotent).",
        discussion: """
            Steps, each skipped when already done (stamp files in <cache>/stamps):
              host packages   busybox-static, dropbear-bin, cpio, iproute2 (+ debootstrap) via apt-get
              QEMU            the host's qemu-system-x86_64 if >= 10.1 with vfio-user-pci, else a
                              debootstrap'd trixie tree with QEMU from trixie-backports (~1 min)
              guest kernel    Debian 12's linux-image-6.1.0-*-amd64: vmlinuz, 8390.ko, ne2k-pci.ko
              keys            dropbear host and client keys, authorized_keys
              guest image     initrd.gz with busybox, the modules, dbclient, guest-agent/image/init
              agent package   vpio-agent_<version>_amd64.deb (dpkg-deb; Depends from dpkg-shlibdeps)
              Debian guests   per --debian suite: a debootstrap tree (systemd, Debian's kernel; 75-100 s
                              the first time), then a raw ext4 disk with the agent's .deb installed by
                              dpkg -i and the workload service (~15 s, again whenever the .deb changes)
              served files    download-<size>.bin (deterministic) and its SHA-256
            Needs root and Debian's package mirror.
            """)

    @OptionGroup var cache: CacheOptions

    @Option(name: .customLong("size"), help: ArgumentHelp(
        "Size of a served file to prepare (K/M/G suffixes; repeatable).", valueName: "bytes"))
    var sizes: [ByteSize] = []

    @Option(help: ArgumentHelp(
        "The full Debian guests to build: a comma-separated list of bookworm (Debian 12) and trixie (Debian 13), or none.",
        valueName: "suites"))
    var debian = DebianSuite.allCases.map(\.rawValue).joined(separator: ",")

    /// --debian as suites.
    var debianSuites: [DebianSuite] {
        get throws {
            guard debian != "none" else { return [] }
            return try debian.split(separator: ",").map { name in
                guard let suite = DebianSuite(rawValue: String(name)) else {
                    throw ValidationError("unknown Debian suite '\(name)' (known: \(DebianSuite.allCases.map(\.rawValue).joined(separator: ", ")), or none)")
                }
                return suite
            }
        }
    }

    func validate() throws { _ = try debianSuites }

    func run() throws {
        cache.bootstrapLogging()
        // Ctrl-C ends the running command; the step then fails and unwinds (mounts are undone).
        let trap = SignalTrap(emergency: {})
        trap.onInterrupt { Supervisor.shared.interruptAll() }
        defer { trap.cancel() }
        do {
            let provisioner = try Provisioner(layout: cache.layout())
            let sizes = sizes.isEmpty ? [ServedFiles.defaultSize] : sizes.map(\.bytes)
            try provisioner.provision(servedSizes: sizes, debianSuites: try debianSuites)
        } catch {
            if trap.interrupted {
                FileHandle.standardError.write(Data("vpio: provisioning interrupted: \(error)\n".utf8))
                throw ExitCode(130)
            }
            throw fail(error)
        }
    }
}
