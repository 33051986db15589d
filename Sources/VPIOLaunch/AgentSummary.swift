/// The guest agent's closing console line, `VPIO-AGENT summary key=value …`, as fields.
public struct AgentSummary: Sendable, Codable, Equatable {
    public static let marker = "VPIO-AGENT summary "

    public var fields: [String: String]

    public init(fields: [String: String]) { self.fields = fields }

    /// Parses one console line; nil when it is not the summary.
    public static func parse(_ line: String) -> AgentSummary? {
        guard let range = line.range(of: marker) else { return nil }
        var fields: [String: String] = [:]
        for word in line[range.upperBound...].split(separator: " ") {
            guard let eq = word.firstIndex(of: "=") else { continue }
            fields[String(word[..<eq])] = String(word[word.index(after: eq)...])
        }
        return AgentSummary(fields: fields)
    }

    public subscript(key: String) -> String? { fields[key] }

    /// A numeric field.
    public func number(_ key: String) -> Double? { fields[key].flatMap(Double.init) }
}
