import ArgumentParser
import Foundation
import Supervision
import Logging
import VPIOLaunch
import VPIOProvision

@main
struct VPIO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vpio",
        abstract: "Drive VPIO experiments: provision the testbed, boot a guest against vpio-host, run workloads.",
        discussion: """
            Everything runs on this machine: the guest's peer (HTTP and ssh servers) lives in a private network \
            namespace with no route off it. Run as root.

            Typical use:
              vpio provision            # once: QEMU >= 10.1, guest kernel and image, keys, the agent's .deb,
                                        # the full Debian 12/13 guests (~5 min; --debian none skips those)
              vpio run                  # boot the guest on vpio-host, download 1 MiB and ssh to the peer
              vpio run --guest debian13 # the same in a full Debian 13 guest, the agent installed from its .deb
            """,
        subcommands: [Provision.self, Run.self, Compare.self, Bench.self, ExitCostCommand.self, Replay.self, Differential.self, ShareBench.self, ModelBench.self, AgentBench.self, AgentCostCommand.self, DP8390Header.self, RTL8139Header.self])
}

/// Options every subcommand that touches the cache shares.
struct CacheOptions: ParsableArguments {
    @Option(name: .customLong("cache"), help: ArgumentHelp(
        "The cache directory (default: $VPIO_CACHE, else <repo>/cache).", valueName: "dir"))
    var directory: String?

    @Flag(name: .shortAndLong, help: "Log diagnostics (debug level) on stderr.")
    var verbose = false

    func layout() throws -> CacheLayout { try CacheLayout.resolve(explicit: directory) }

    func bootstrapLogging() {
        // A mask inherited from a parent's thread pool would keep SIGINT/SIGTERM from reaching vpio.
        SignalMask.clear()
        let level: Logger.Level = verbose ? .debug : .notice
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// A byte count with an optional K/M/G suffix (binary multiples).
struct ByteSize: ExpressibleByArgument {
    var bytes: Int
    init?(argument: String) {
        guard let bytes = ServedFiles.parseSize(argument) else { return nil }
        self.bytes = bytes
    }
    init(bytes: Int) { self.bytes = bytes }
    var defaultValueDescription: String { "\(bytes)" }
}

/// Prints an error for a person and exits non-zero.
func fail(_ error: Error) -> ExitCode {
    FileHandle.standardError.write(Data("vpio: error: \(error)\n".utf8))
    return ExitCode(2)
}
