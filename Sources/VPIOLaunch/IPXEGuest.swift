import Foundation
import VPIOProvision

/// The script an iPXE guest runs from its kernel command line: configure net0 statically, open it,
/// fetch the served file and then the completion marker, report each step as a `VPIO-RESULT` line.
/// iPXE has no checksum command, so the download is verified on the host (`IPXEDownloadCheck`).
/// Lines stay under 80 columns: the BIOS's serial console wraps there.
public struct IPXEScript: Sendable, Equatable {
    public var address: String
    public var netmask: String
    public var peer: String
    public var httpPort: Int
    /// The served file to fetch; nil: no download (the `none` workload).
    public var file: String?

    public static let driver = "ipxe-ns8390"

    public init(address: String, netmask: String, peer: String, httpPort: Int, file: String?) {
        self.address = address
        self.netmask = netmask
        self.peer = peer
        self.httpPort = httpPort
        self.file = file
    }

    /// The commands, in order. `vpio_rc` starts at 1 and becomes 0 only when every step succeeded.
    public var commands: [String] {
        let nic = "VPIO-RESULT nic driver=\(Self.driver) mac=${net0/mac}"
        var lines = [
            "set vpio_rc 1", "echo VPIO-RESULT boot uptime=0",
            "set net0/ip \(address)", "set net0/netmask \(netmask)",
            "ifopen net0 && echo \(nic) ok || echo \(nic) failed",
        ]
        if let file {
            let base = "http://\(peer):\(httpPort)"
            lines += [
                "echo VPIO-RESULT ipxe-fetch-start",
                "imgfetch -n payload \(base)/\(file) && imgstat payload && imgfetch -n marker \(base)/\(GuestIPXE.markerName)"
                    + " && echo VPIO-RESULT ipxe-fetch ok && set vpio_rc 0 || echo VPIO-RESULT ipxe-fetch failed",
            ]
        } else {
            lines.append("ifstat net0 && set vpio_rc 0")
        }
        return lines + ["ifstat net0", "echo VPIO-RESULT done rc=${vpio_rc}", "exit"]
    }

    /// The kernel command line: iPXE runs it as a script, `;` between commands.
    public var text: String { commands.joined(separator: " ; ") }
}

/// The host's verdict on an iPXE download, from four independent witnesses: iPXE's own completion
/// (its HTTP client fails short of the Content-Length, and TCP checksums guard every segment), the
/// image size iPXE's `imgstat` printed, the peer's httpd log (the file answered 200, then the marker
/// requested — fetched only after the download completed), and the bytes the peer's link sent.
public struct IPXEDownloadCheck: Sendable, Equatable {
    /// Console facts: when the fetch started and ended, whether iPXE said ok, the size `imgstat` printed.
    public var started: Date?
    public var ended: Date?
    public var fetchOK = false
    public var imageSize: Int?

    public init() {}

    /// Folds one console line in (at `time`).
    public mutating func observe(_ line: String, at time: Date) {
        if let result = ResultLine.parse(line) {
            if result.kind == "ipxe-fetch-start" { started = time }
            if result.kind == "ipxe-fetch" { ended = time; fetchOK = result.status == "ok" }
        } else if let size = Self.imgstatSize(line, image: "payload") {
            imageSize = size
        }
    }

    /// The size in an `imgstat` line: `payload : 1048576 bytes …`.
    static func imgstatSize(_ line: String, image: String) -> Int? {
        let words = line.split(separator: " ")
        guard words.count >= 4, words[0] == image, words[1] == ":", words[3] == "bytes" else { return nil }
        return Int(words[2])
    }

    /// The download result: ok only when every witness agrees on `size` bytes of `file`.
    public func verdict(file: String, size: Int, httpLog: String, peerBytesSent: Int?) -> RunResult.Download {
        let seconds = started.flatMap { start in ended.map { $0.timeIntervalSince(start) } } ?? 0
        var problems: [String] = []
        if !fetchOK { problems.append("iPXE's fetch failed") }
        if imageSize != size { problems.append("imgstat says \(imageSize.map(String.init) ?? "nothing"), expected \(size)") }
        if !Self.served(file, in: httpLog) { problems.append("httpd log shows no 200 for /\(file)") }
        if fetchOK, !Self.requested(GuestIPXE.markerName, in: httpLog) { problems.append("httpd log shows no marker request") }
        if (peerBytesSent ?? 0) < size { problems.append("the peer's link sent \(peerBytesSent ?? 0) bytes") }
        let status = problems.isEmpty ? "ok" : (fetchOK ? "mismatch" : "failed")
        return RunResult.Download(bytes: imageSize ?? 0, seconds: seconds, sha256: nil, status: status,
                                  error: problems.isEmpty ? nil : problems.joined(separator: "; "))
    }

    /// busybox httpd -vv logs `url:/path` for each request and `response:200` for its answer.
    static func served(_ file: String, in log: String) -> Bool {
        let lines = log.split(separator: "\n")
        guard let request = lines.firstIndex(where: { $0.hasSuffix("url:/\(file)") }) else { return false }
        return lines[request...].dropFirst().first { $0.contains("response:") }?.hasSuffix("response:200") == true
    }

    static func requested(_ file: String, in log: String) -> Bool {
        log.split(separator: "\n").contains { $0.hasSuffix("url:/\(file)") }
    }
}
