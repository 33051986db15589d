import ArgumentParser
import DP8390

/// Prints the C header the guest agent's BPF program includes (guest-agent/bpf/dp8390.h), generated
/// from the DP8390 module so that the register offsets and the CR rule have one definition.
struct DP8390Header: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dp8390-header",
        abstract: "Print guest-agent/bpf/dp8390.h, generated from the DP8390 module (a test checks the committed copy).")

    func run() {
        print(DP8390CHeader.render(), terminator: "")
    }
}
