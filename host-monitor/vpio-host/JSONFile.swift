import Foundation

extension Encodable {
    /// Writes this value as sorted, indented JSON: the form of every file vpio-host leaves (`--stats-json`,
    /// `--ledger-json`), so runs diff line by line.
    func writeJSON(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path))
    }
}
