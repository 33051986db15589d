import Foundation
import Supervision

extension Provisioner {
    /// The key type for both keys (dropbear 2022.83 on both sides supports it).
    static let keyType = "ed25519"

    /// The `ssh-…` public key line from `dropbearkey -y` output.
    static func parsePublicKey(_ output: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix("ssh-") }.map(String.init)
    }

    /// Step d: a dropbear host key, a client key, and an authorized_keys (in a stand-in home that the
    /// peer's dropbear sees as /root) holding the client's public key.
    func ensureKeys() throws {
        try stampedStep("keys", title: "keys: dropbear host and client keys", fingerprint: Self.keyType,
                        outputs: [layout.hostKey, layout.clientKey, layout.authorizedKeys]) {
            let fm = FileManager.default
            try fm.createDirectory(at: layout.keysDirectory, withIntermediateDirectories: true)
            for key in [layout.hostKey, layout.clientKey] {
                try? fm.removeItem(at: key)  // dropbearkey refuses to overwrite
                try Command.run(["dropbearkey", "-t", Self.keyType, "-f", key.path], step: "keys: dropbearkey \(key.lastPathComponent)")
            }
            let output = try Command.run(["dropbearkey", "-y", "-f", layout.clientKey.path], step: "keys: public client key")
            guard let publicKey = Self.parsePublicKey(output) else {
                throw StepError(step: "keys: public client key", reason: "no ssh-* line in dropbearkey -y output")
            }
            let ssh = layout.authorizedKeys.deletingLastPathComponent()
            try fm.createDirectory(at: ssh, withIntermediateDirectories: true)
            try Data((publicKey + "\n").utf8).write(to: layout.authorizedKeys)
            // dropbear refuses keys under a group/world-writable home or .ssh.
            try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: layout.peerHome.path)
            try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: ssh.path)
            try fm.setAttributes([.posixPermissions: 0o600], ofItemAtPath: layout.authorizedKeys.path)
        }
    }
}
