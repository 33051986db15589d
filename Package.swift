// swift-tools-version: 6.2
import PackageDescription

// Layers, bottom up: pure codecs and models (no Glibc) → syscall wrappers → server and
// backends → tools. See README.md for the tree.
let package = Package(
    name: "vpio",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "vpio", targets: ["vpio"]),
        .executable(name: "vpio-host", targets: ["vpio-host"]),
        .executable(name: "vpio-agent", targets: ["vpio-agent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
    ],
    targets: [
        // C macros and ioctl numbers Swift cannot import (CMSG_*, TUNSETIFF).
        .target(name: "CVPIOShim"),
        // Small typed wrappers around the syscalls the host needs.
        .target(name: "VPIOSystem", dependencies: [
            "CVPIOShim",
            .product(name: "SystemPackage", package: "swift-system"),
        ], swiftSettings: [.strictMemorySafety()]),
        // KVM ioctl numbers, kvm_run accessors and rdtsc, which Swift cannot import.
        .target(name: "CKVM"),
        // A tiny /dev/kvm guest that times port-I/O exits (`vpio exit-cost`).
        .target(name: "KVMProbe", dependencies: [
            "CKVM",
            .product(name: "SystemPackage", package: "swift-system"),
        ], swiftSettings: [.strictMemorySafety()]),
        // The agent–host ABI (ring + capability), mirrored from protocol/include/vpio_ring.h.
        .target(name: "VPIOProtocol", dependencies: ["DP8390"], path: "protocol/swift"),
        // vfio-user wire format: pure encode/decode, no I/O.
        .target(name: "VFIOUserWire"),
        // The bus-level black-box device interface every backend implements.
        .target(name: "DeviceBus"),
        // Virtual PCI configuration space (pure).
        .target(name: "PCIFunction"),
        // The one definition of the DP8390: registers, the CR rule, BAR0 decoding, the remote-address
        // arithmetic, DMA kinds, and the C header the agent's BPF program includes (pure).
        .target(name: "DP8390", dependencies: ["DeviceBus"]),
        // The NE2000 (DP8390 + ASIC) behind DeviceBus (pure).
        .target(name: "NE2000", dependencies: ["DeviceBus", "DP8390"]),
        // The RTL8139, a bus-master NIC whose DMA reaches guest memory, behind DeviceBus (pure).
        .target(name: "RTL8139", dependencies: ["DeviceBus"]),
        // The VPIO models of the RTL8139: the DMA check at each transmit start and ring setup, the hook
        // set and monitor of every mode (pure).
        .target(name: "RTL8139Model", dependencies: ["RTL8139", "DeviceBus", "VPIOMonitor"]),
        // QEMU's own ne2k_pci behind DeviceBus, driven over qtest: an NE2000 nobody here wrote.
        // The one child-process type, the registry of running children, the one step error, cleanups.
        .target(name: "Supervision", dependencies: [.product(name: "Logging", package: "swift-log")]),
        .target(name: "QEMUDevice", dependencies: ["DeviceBus", "VPIOSystem", "Supervision"]),
        // The VPIO models of the NE2000: full and reduced model, DMA intents (pure).
        .target(name: "NE2000Model", dependencies: ["DeviceBus", "DP8390"]),
        // Binary trace of a device's access stream (pure codec).
        .target(name: "AccessTrace", dependencies: ["NE2000Model", "DeviceBus"]),
        // One NE2000 shared by several guests: contexts saved and restored through the register interface,
        // the switcher, frames demultiplexed per guest (pure).
        .target(name: "DeviceSharing", dependencies: ["DeviceBus", "DP8390", "NE2000Model"]),
        // A recorded trace replayed on two devices at once, every read, edge and frame compared (pure).
        .target(name: "TraceReplay", dependencies: ["AccessTrace", "NE2000Model", "DeviceBus", "DP8390"]),
        // Hook sets per mode, shadow monitors, the exit ledger (pure).
        .target(name: "VPIOMonitor", dependencies: ["NE2000Model"]),
        // `vpio compare`'s report: scenarios, pooled exits per mode, cost estimate; table, CSV, JSON, SVG (pure).
        .target(name: "VPIOCompare", dependencies: ["VPIOMonitor"]),
        // The seeded generator of every property and fuzz test (test support; no production code uses it).
        .target(name: "SeededRandom"),
        // rdtsc for the model benchmark.
        .target(name: "CCycleCounter"),
        // vfio-user server: transport, session, DMA map table, dispatch to a BusDevice.
        .target(name: "VFIOUserServer", dependencies: [
            "VFIOUserWire", "VPIOSystem", "DeviceBus", "PCIFunction",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: [.strictMemorySafety()]),
        // A small synchronous client, for socket tests and the round-trip benchmark.
        .target(name: "VFIOUserClient", dependencies: ["VFIOUserWire", "VPIOSystem"]),
        // The host's end of the agent ABI: the capability, ring reading, intent matching.
        .target(name: "AgentLink", dependencies: ["DeviceBus", "VPIOProtocol", "VFIOUserServer"], swiftSettings: [.strictMemorySafety()]),
        // Enforcement at DMA starts and the fallback ladder (pure).
        .target(name: "Enforcement", dependencies: ["VPIOMonitor", "NE2000Model"]),
        // Where frames come from and go to: a TAP in a network namespace.
        .target(name: "PacketBackend", dependencies: [
            "VPIOSystem", "DeviceBus", "VFIOUserServer", "Supervision",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: [.strictMemorySafety()]),
        // Fetches and builds what a run needs: QEMU, guest kernel, initramfs, keys, served files.
        .target(name: "VPIOProvision", dependencies: [
            "Supervision", .product(name: "Logging", package: "swift-log"),
        ]),
        // Runs an experiment: network namespace with the peer servers, vpio-host, QEMU, the console.
        .target(name: "VPIOLaunch", dependencies: [
            "VPIOProvision", "PacketBackend", "VPIOSystem", "Supervision",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The host monitor's per-guest pieces: the ledger, the DMA gate (judge, deny, disarm through the
        // register interface), the receive gate.
        .target(name: "HostMonitor", dependencies: [
            "AgentLink", "Enforcement", "DeviceBus", "NE2000", "NE2000Model", "VPIOMonitor", "AccessTrace", "VPIOProtocol",
            "VFIOUserServer", "QEMUDevice", "DeviceSharing", "RTL8139", "RTL8139Model", "PCIFunction", .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: [.strictMemorySafety()]),
        .executableTarget(name: "vpio-host", dependencies: [
            "HostMonitor", "AgentLink", "Enforcement", "VFIOUserServer", "NE2000", "PacketBackend", "VPIOSystem", "DeviceBus", "PCIFunction",
            "NE2000Model", "VPIOMonitor", "AccessTrace", "VPIOProvision", "DeviceSharing", "RTL8139",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], path: "host-monitor/vpio-host"),
        .executableTarget(name: "vpio", dependencies: [
            "KVMProbe",
            "VPIOProvision", "VPIOLaunch", "VFIOUserClient", "VFIOUserWire", "VPIOSystem", "DP8390",
            "NE2000Model", "VPIOMonitor", "VPIOCompare", "AccessTrace", "CCycleCounter", "TraceReplay", "QEMUDevice", "NE2000", "RTL8139", "DeviceBus",
            "Supervision", "DeviceSharing", "VPIOAgentCore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The guest agent (guest-agent/): libbpf + libelf, a C shim for their macros, the testable core,
        // and the executable. Built for the guest with --static-swift-stdlib (see guest-agent/README.md).
        .systemLibrary(name: "CLibBPF", path: "guest-agent/Sources/CLibBPF"),
        .target(name: "CVPIOAgentShim", dependencies: ["CLibBPF"], path: "guest-agent/Sources/CVPIOAgentShim"),
        .target(name: "VPIOAgentCore", dependencies: ["CVPIOAgentShim", "CLibBPF", "NE2000Model", "RTL8139", "RTL8139Model", "DeviceBus", "VPIOProtocol"], path: "guest-agent/Sources/VPIOAgentCore",
                swiftSettings: [.strictMemorySafety()]),
        .executableTarget(name: "vpio-agent", dependencies: [
            "VPIOAgentCore", "CVPIOAgentShim", "CLibBPF",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "guest-agent/Sources/vpio-agent"),
        .testTarget(name: "VPIOAgentTests", dependencies: ["VPIOAgentCore", "CVPIOAgentShim", "CLibBPF", "VPIOProtocol", "RTL8139", "RTL8139Model", "DeviceBus", "SeededRandom"], path: "guest-agent/Tests/VPIOAgentTests",
                    exclude: ["Fixtures"]),
        .testTarget(name: "VFIOUserWireTests", dependencies: ["VFIOUserWire"]),
        .testTarget(name: "VFIOUserServerTests", dependencies: ["VFIOUserServer", "VFIOUserClient", "VFIOUserWire", "NE2000", "DeviceBus", "PCIFunction", "VPIOSystem", "CVPIOShim"]),
        .testTarget(name: "VPIOProtocolTests", dependencies: ["VPIOProtocol", "Supervision"]),
        .testTarget(name: "KVMProbeTests", dependencies: ["KVMProbe", .product(name: "SystemPackage", package: "swift-system")]),
        .testTarget(name: "EnforcementTests", dependencies: ["Enforcement", "VPIOMonitor", "NE2000Model", "NE2000", "DeviceBus"]),
        .testTarget(name: "HostMonitorTests", dependencies: [
            "HostMonitor", "AgentLink", "Enforcement", "VPIOMonitor", "NE2000Model", "NE2000", "DeviceBus", "VPIOProtocol",
            "VFIOUserServer", "PCIFunction", "SeededRandom", "DeviceSharing", "RTL8139", "RTL8139Model", "VFIOUserWire", "VPIOSystem", "CVPIOShim",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "DP8390Tests", dependencies: ["DP8390", "DeviceBus"]),
        .testTarget(name: "AgentLinkTests", dependencies: [
            "AgentLink", "VPIOProtocol", "VFIOUserServer", "DeviceBus", "PCIFunction", "VFIOUserClient", "VFIOUserWire", "VPIOSystem",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "PCIFunctionTests", dependencies: ["PCIFunction"]),
        .testTarget(name: "VPIOSystemTests", dependencies: ["VPIOSystem", "Supervision"]),
        .testTarget(name: "DeviceSharingTests", dependencies: ["DeviceSharing", "NE2000", "NE2000Model", "DeviceBus", "DP8390", "QEMUDevice", "VPIOProvision", "AccessTrace", "SeededRandom"]),
        .testTarget(name: "SupervisionTests", dependencies: ["Supervision", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "NE2000Tests", dependencies: ["NE2000", "DeviceBus", "SeededRandom"]),
        .testTarget(name: "RTL8139Tests", dependencies: ["RTL8139", "RTL8139Model", "DeviceBus", "SeededRandom"]),
        .testTarget(name: "QEMUDeviceTests", dependencies: ["QEMUDevice", "NE2000", "DeviceBus", "VPIOSystem", "VPIOProvision",
                                                            "TraceReplay", "AccessTrace"],
                    exclude: ["Traces"]),
        .testTarget(name: "NE2000ModelTests", dependencies: ["NE2000Model", "DeviceBus"]),
        .testTarget(name: "AccessTraceTests", dependencies: ["AccessTrace", "NE2000Model", "DeviceBus"]),
        .testTarget(name: "VPIOMonitorTests", dependencies: ["VPIOMonitor", "NE2000Model", "AccessTrace", "DeviceBus", "SeededRandom"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "VPIOCompareTests", dependencies: ["VPIOCompare", "VPIOMonitor"]),
        .testTarget(name: "EndToEndTests", dependencies: ["VPIOProvision", "VPIOLaunch", "VPIOCompare", "VPIOMonitor", "Supervision", "AccessTrace",
                                                          "DeviceSharing"]),
    ]
)
