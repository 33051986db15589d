import AccessTrace
import ArgumentParser
import Foundation
import NE2000Model
import VPIOMonitor

/// Reads a trace file's device events, with the decoder's error as the message when it is not one.
func loadTrace(_ path: String) throws -> [DeviceEvent] {
    let bytes = try traceBytes(path)
    do { return try TraceDecoder.decode(bytes) } catch { throw ValidationError("\(path): \(error)") }
}

/// Reads every record of a trace file, frames included.
func loadTraceRecords(_ path: String) throws -> [TraceRecord] {
    let bytes = try traceBytes(path)
    do { return try TraceDecoder.decodeRecords(bytes) } catch { throw ValidationError("\(path): \(error)") }
}

private func traceBytes(_ path: String) throws -> [UInt8] {
    do {
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    } catch {
        throw ValidationError("cannot read \(path): \(error.localizedDescription)")
    }
}

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every mode's monitor over a recorded access trace and print the exit ledger.",
        discussion: """
            The trace comes from `vpio-host --record` (or `vpio run --record`). Each mode's monitor is fed only \
            the accesses its own hook set traps, exactly as vpio-host does live, so the ledger equals the one \
            the recording run wrote with --ledger-json.
            """)

    @Argument(help: "The trace file.")
    var file: String

    @Option(help: "The mode to label enforced (as the recording run had it).")
    var enforced: Mode = .cooperative

    @Flag(help: "Print the ledger as JSON instead of a table.")
    var json = false

    func run() throws {
        let ledger = GuestMonitors.replay(try loadTrace(file), enforced: enforced)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(ledger), as: UTF8.self))
        } else {
            ledger.table.forEach { print($0) }
        }
    }
}

extension Mode: ExpressibleByArgument {}
