import ArgumentParser
import RTL8139

/// Prints the RTL8139 header the guest agent's BPF program includes (guest-agent/bpf/rtl8139.h),
/// generated from the RTL8139 module so that its registers and the ring's length rule have one definition.
struct RTL8139Header: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rtl8139-header",
        abstract: "Print guest-agent/bpf/rtl8139.h, generated from the RTL8139 module (a test checks the committed copy).")

    func run() {
        print(RTL8139CHeader.render(), terminator: "")
    }
}
