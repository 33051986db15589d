import Foundation
import Supervision

extension Provisioner {
    /// Debian packages the host needs: busybox (guest image and the peer's httpd), dropbear (peer ssh
    /// server, guest ssh client, key generation), cpio (image), iproute2 (namespaces); the static libraries the
    /// guest agent links (libbpf, libelf, zlib, zstd; `./vpio` installs them before its first build too);
    /// gcc and libc6-dev for the static guest tools of the enforcement tests; dpkg-dev (dpkg-shlibdeps) for
/// the agent's Debian package; debootstrap only when the
    /// host's QEMU cannot be used.
    public static func hostPackages(needDebootstrap: Bool) -> [String] {
        ["busybox-static", "dropbear-bin", "cpio", "iproute2", "gcc", "libc6-dev", "dpkg-dev"] + agentBuildPackages
            + (needDebootstrap ? ["debootstrap"] : [])
    }

    /// What building vpio-agent needs (headers and static archives).
    public static let agentBuildPackages = ["libbpf-dev", "libelf-dev", "zlib1g-dev", "libzstd-dev", "liblzma-dev"]

    /// The packages of `names` that dpkg does not report as installed.
    static func missingPackages(_ names: [String]) -> [String] {
        names.filter { name in
            guard let result = try? Command.status(
                ["dpkg-query", "-W", "-f=${db:Status-Status}", name], step: "host packages")
            else { return true }
            return result.status != 0 || result.text.trimmingCharacters(in: .whitespacesAndNewlines) != "installed"
        }
    }

    /// Step a: install missing host packages with apt-get (running `apt-get update` first).
    func ensureHostPackages(needDebootstrap: Bool) throws {
        let wanted = Self.hostPackages(needDebootstrap: needDebootstrap)
        let missing = Self.missingPackages(wanted)
        guard !missing.isEmpty else {
            progress.line("host packages… present (\(wanted.joined(separator: ", ")))")
            return
        }
        try progress.step("host packages: installing \(missing.joined(separator: ", "))") {
            try aptUpdateOnce(step: "host packages")
            try Command.run(
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing, step: "host packages",
                environment: ["DEBIAN_FRONTEND": "noninteractive"])
            let still = Self.missingPackages(missing)
            guard still.isEmpty else {
                throw StepError(step: "host packages", reason: "still not installed: \(still.joined(separator: ", "))")
            }
        }
    }
}
