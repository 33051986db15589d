import Foundation
import Testing
import VPIOProvision

/// The agent's Debian package as provisioning builds it: what dpkg will install, and that the unit and
/// the agent agree on where things are.
@Suite("Agent package")
struct AgentPackageTests {
    @Test func controlAndDependsAreFilledIn() {
        #expect(AgentPackage.parseShlibsDepends("shlibs:Depends=libc6 (>= 2.35), libgcc-s1 (>= 3.3)\n") == "libc6 (>= 2.35), libgcc-s1 (>= 3.3)")
        #expect(AgentPackage.parseShlibsDepends("dpkg-shlibdeps: warning: x\n") == nil)
        #expect(AgentPackage.parseShlibsDepends("shlibs:Depends=\n") == nil)
        let control = AgentPackage.control(template: "Version: @VERSION@\nDepends: @DEPENDS@\nInstalled-Size: @INSTALLED_SIZE@\n",
                                           version: "0.3", depends: "libc6", installedKiB: 12)
        #expect(control == "Version: 0.3\nDepends: libc6\nInstalled-Size: 12\n")
    }

    @Test("the provisioned .deb: control fields, every file, the unit starting the packaged binary",
          .enabled(if: EndToEnd.skipReason == nil, Comment(rawValue: EndToEnd.skipReason ?? "")))
    func provisionedPackage() throws {
        let cache = try CacheLayout.resolve()
        let names = try FileManager.default.contentsOfDirectory(atPath: cache.agentDirectory.path).filter { $0.hasSuffix(".deb") }
        try #require(names.count == 1, "one package in \(cache.agentDirectory.path): \(names)")
        let deb = cache.agentDirectory.appendingPathComponent(names[0]).path
        let field = { (name: String) in try Self.output(["dpkg-deb", "-f", deb, name]).trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(try field("Package") == "vpio-agent")
        #expect(try field("Architecture") == "amd64")
        let depends = try field("Depends")
        for library in ["libc6 (>= 2.", "libstdc++6", "libgcc-s1"] { #expect(depends.contains(library), "Depends: \(depends)") }
        let files = try Self.output(["dpkg-deb", "-c", deb])
        for path in ["./usr/bin/vpio-agent", "./usr/lib/vpio-agent/vpio_agent.bpf.o", "./usr/lib/systemd/system/vpio-agent.service",
                     "./usr/lib/udev/rules.d/60-vpio-agent.rules", "./usr/share/doc/vpio-agent/README.md", "./usr/share/doc/vpio-agent/copyright"] {
            #expect(files.contains(" \(path)\n"), "\(path) in the package")
        }
        for line in files.split(separator: "\n") { #expect(line.contains(" root/root "), "owned by root: \(line)") }
        let unit = try Self.output(["dpkg-deb", "--fsys-tarfile", deb], thenPipeTo: ["tar", "-xO", "./usr/lib/systemd/system/vpio-agent.service"])
        #expect(unit.contains("ExecStart=/usr/bin/vpio-agent\n") && unit.contains("Type=notify"))
        let scripts = try Self.output(["dpkg-deb", "-I", deb])
        for script in ["postinst", "prerm", "postrm"] { #expect(scripts.contains(" \(script) "), "\(script) in the control archive") }
    }

    static func output(_ argv: [String], thenPipeTo second: [String]? = nil) throws -> String {
        let first = Process()
        first.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        first.arguments = argv
        let pipe = Pipe()
        first.standardOutput = pipe
        guard let second else {
            try first.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            first.waitUntilExit()
            #expect(first.terminationStatus == 0, "\(argv)")
            return String(decoding: data, as: UTF8.self)
        }
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        reader.arguments = second
        reader.standardInput = pipe
        let out = Pipe()
        reader.standardOutput = out
        try first.run()
        try reader.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        first.waitUntilExit()
        reader.waitUntilExit()
        #expect(reader.terminationStatus == 0, "\(second)")
        return String(decoding: data, as: UTF8.self)
    }
}
