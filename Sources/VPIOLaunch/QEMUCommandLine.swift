import Foundation
import VPIOProvision

/// How the guest's NIC is provided: the part of the QEMU line that differs between configurations.
public enum GuestNIC: Sendable, Equatable {
    /// The device lives in vpio-host, reached over vfio-user on a UNIX socket.
    case vfioUser(socket: String)
    /// QEMU's own in-process NIC (`ne2k_pci` or `rtl8139`) on a TAP, by name: QEMU runs inside the
    /// namespace that holds the (persistent) TAP.
    case qemuDevice(QEMUNICModel, tap: TapAttachment, mac: String)

    public enum TapAttachment: Sendable, Equatable {
        case ifname(String)
    }

    /// The QEMU options for this NIC and guest RAM: for vpio-host, exactly what `vpio-host
    /// --print-qemu-args` prints; QEMU's own NIC gets the same shared RAM, so the configurations
    /// differ only in the NIC.
    public func qemuArguments(memoryMiB: Int) -> [String] {
        switch self {
        case let .vfioUser(socket):
            return VFIOUserQEMUOptions(socket: socket, memoryMiB: memoryMiB).arguments
        case let .qemuDevice(model, .ifname(name), mac):
            return VFIOUserQEMUOptions(socket: "", memoryMiB: memoryMiB).memoryArguments
                + ["-netdev", "tap,id=n0,ifname=\(name),script=no,downscript=no", "-device", "\(model.rawValue),netdev=n0,mac=\(mac)"]
        }
    }
}

/// QEMU's in-process NICs the runs compare with, by QEMU's device name.
public enum QEMUNICModel: String, Sendable, Equatable {
    case ne2kPCI = "ne2k_pci"
    case rtl8139
}

/// The accelerator: TCG (default; this machine's nested KVM cannot run a Linux guest) or KVM (real hosts).
public enum Accelerator: String, Sendable, CaseIterable {
    case tcg
    case kvm
}

/// What the guest runs, booted by QEMU as its kernel.
public enum GuestProgram: Sendable, Equatable {
    /// Linux with the test initramfs; `arguments` follow the fixed `console=ttyS0 quiet panic=-1`.
    case linux(kernel: URL, initramfs: URL, arguments: [String])
    /// iPXE, whose kernel command line is the script it runs (`IPXEScript`).
    case ipxe(image: URL, script: String)
    /// A full Debian system on a virtio disk, booted with Debian's kernel and initrd; `arguments`
    /// follow `DebianGuestImage.kernelArguments`. `snapshot=on`: writes go to a temporary overlay, so
    /// the cached disk never changes and concurrent guests can share it.
    case disk(DebianGuestImage, arguments: [String])

    /// The machine options and boot part of the QEMU line. iPXE prints through the BIOS, which
    /// `graphics=off` sends to the serial console; when its script exits, the BIOS finds nothing to
    /// boot and reboots at once (`reboot-timeout=0`), which `-no-reboot` turns into QEMU's exit.
    var machine: String { if case .ipxe = self { "q35,graphics=off" } else { "q35" } }

    var bootArguments: [String] {
        switch self {
        case let .linux(kernel, initramfs, arguments):
            return ["-kernel", kernel.path, "-initrd", initramfs.path,
                    "-append", (["console=ttyS0", "quiet", "panic=-1"] + arguments).joined(separator: " ")]
        case let .ipxe(image, script):
            return ["-boot", "reboot-timeout=0", "-kernel", image.path, "-append", script]
        case let .disk(image, arguments):
            return ["-kernel", image.kernel.path, "-initrd", image.initrd.path,
                    "-append", (DebianGuestImage.kernelArguments + arguments).joined(separator: " "),
                    "-drive", "file=\(image.disk.path),format=raw,if=virtio,snapshot=on"]
        }
    }

    /// Guest RAM: Debian's systemd userland needs more than the test initramfs.
    var memoryMiB: Int { if case .disk = self { 512 } else { 256 } }
}

/// Builds a QEMU argv for a direct-kernel boot of the test guest with the console on stdio.
public struct QEMUCommandLine: Sendable {
    public var installation: QEMUInstallation
    public var accelerator: Accelerator = .tcg
    public var memoryMiB: Int
    public var program: GuestProgram
    public var nic: GuestNIC
    /// Anything else (e.g. `-trace` options), appended last.
    public var extraArguments: [String] = []

    public init(installation: QEMUInstallation, program: GuestProgram, nic: GuestNIC) {
        self.installation = installation
        self.program = program
        self.nic = nic
        memoryMiB = program.memoryMiB
    }

    /// The whole argv, starting with the installation's prefix.
    public var argv: [String] {
        installation.argvPrefix + [
            "-machine", program.machine,
            "-accel", accelerator.rawValue,
        ] + (accelerator == .kvm ? ["-cpu", "host"] : []) + [
            "-m", "\(memoryMiB)M",
            "-nodefaults", "-nic", "none",
            "-serial", "stdio", "-display", "none", "-no-reboot",
        ] + program.bootArguments + nic.qemuArguments(memoryMiB: memoryMiB) + extraArguments
    }
}

/// The guest's parameters, passed as `vpio_NAME=VALUE` kernel command line words (read by
/// `guest-agent/image/init`).
public struct GuestParameters: Sendable {
    public var address = "10.77.0.2/24"
    public var peer = "10.77.0.1"
    public var httpPort = 8080
    public var sshPort = 2222
    public var file: String
    public var sha256: String
    public var workloads: [String]
    /// Optional cap of the guest's TCP receive buffer (bytes).
    public var receiveBuffer: Int?
    /// Per-workload timeout inside the guest (seconds).
    public var workloadTimeout: Int?
    /// The guest powers itself off after this many seconds.
    public var deadline: Int?
    /// Whether /init starts vpio-agent (`vpio_agent=1` registers the ring, `vpio_agent=observe` does not).
    public var agent: AgentMode?
    /// The agent's heartbeat/state interval in seconds (`vpio-agent --publish-every`); nil: its default.
    public var agentPublishInterval: Double?
    /// The driver /init loads (`vpio_nic`); nil: ne2k-pci.
    public var nicDriver: NICDriver?

    /// How the guest drives an RTL8139: 8139too with `use_io=1` (I/O ports) or as it is (MMIO).
    public enum NICDriver: String, Sendable, Equatable {
        case rtl8139
        case rtl8139MMIO = "rtl8139-mmio"
        /// 8139cp, for QEMU's rtl8139 (an 8139C+, which 8139too refuses).
        case rtl8139CPlus = "rtl8139cp"
    }

    public enum AgentMode: String, Sendable, Equatable {
        case register = "1"
        case observe
    }

    public init(file: String, sha256: String, workloads: [String]) {
        self.file = file
        self.sha256 = sha256
        self.workloads = workloads
    }

    public var kernelArguments: [String] {
        var words = [
            "vpio_ip=\(address)", "vpio_peer=\(peer)", "vpio_http=\(httpPort)", "vpio_ssh=\(sshPort)",
            "vpio_file=\(file)", "vpio_sha=\(sha256)", "vpio_workloads=\(workloads.joined(separator: ","))",
        ]
        if let receiveBuffer { words.append("vpio_rmem=\(receiveBuffer)") }
        if let workloadTimeout { words.append("vpio_timeout=\(workloadTimeout)") }
        if let deadline { words.append("vpio_deadline=\(deadline)") }
        if let agent { words.append("vpio_agent=\(agent.rawValue)") }
        if let agentPublishInterval { words.append("vpio_agent_publish=\(agentPublishInterval)") }
        if let nicDriver { words.append("vpio_nic=\(nicDriver.rawValue)") }
        return words
    }
}
