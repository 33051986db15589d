import Foundation
import Supervision

/// The second guest driver: iPXE from Debian's `ipxe` package (`/boot/ipxe.lkrn`), whose `ns8390`
/// driver binds the RTL8029 (10ec:8029). QEMU boots it as a kernel and iPXE runs its command line as a
/// script (VPIOLaunch.IPXEScript). Beside the served files, a small marker the script fetches last.
public enum GuestIPXE {
    public static let package = "ipxe"
    /// The file iPXE fetches once the download has completed, and its content.
    public static let markerName = "vpio-ipxe-done.txt"
    public static let markerContent = "vpio ipxe download complete\n"
}

extension Provisioner {
    /// Step: `apt-get download ipxe`, keep `boot/ipxe.lkrn`; write the completion marker.
    func ensureGuestIPXE() throws {
        let candidate = (try? Command.run(["apt-cache", "policy", GuestIPXE.package], step: "guest iPXE: resolve"))
            .flatMap(Self.candidateVersion) ?? "unknown"
        try stampedStep("ipxe", title: "guest iPXE: \(GuestIPXE.package) \(candidate)", fingerprint: candidate,
                        outputs: [layout.ipxeKernel, layout.ipxeMarker]) {
            let fm = FileManager.default
            let work = layout.ipxeDirectory.appendingPathComponent("work")
            defer { try? fm.removeItem(at: work) }
            let (tree, deb) = try extractPackage(GuestIPXE.package, into: work, step: "guest iPXE")
            let image = tree.appendingPathComponent("boot/ipxe.lkrn")
            guard fm.fileExists(atPath: image.path) else {
                throw StepError(step: "guest iPXE: extract", reason: "no boot/ipxe.lkrn in \(deb)")
            }
            try? fm.removeItem(at: layout.ipxeKernel)
            try fm.copyItem(at: image, to: layout.ipxeKernel)
            try fm.createDirectory(at: layout.servedDirectory, withIntermediateDirectories: true)
            try Data(GuestIPXE.markerContent.utf8).write(to: layout.ipxeMarker, options: .atomic)
        }
    }

    /// The `Candidate:` version in `apt-cache policy` output.
    static func candidateVersion(_ policy: String) -> String? {
        policy.split(separator: "\n").lazy.map { $0.trimmingCharacters(in: .whitespaces) }
            .first { $0.hasPrefix("Candidate:") }
            .map { String($0.dropFirst("Candidate:".count)).trimmingCharacters(in: .whitespaces) }
            .flatMap { $0 == "(none)" ? nil : $0 }
    }
}
