import Foundation
import VPIOMonitor

extension CompareReport {
    /// The bar colour of each mode.
    static let modeColours: [Mode: String] = [
        .emulated: "#c0392b", .vmmModel: "#e67e22", .cooperative: "#2980b9", .onDemand: "#27ae60", .passthrough: "#7f8c8d",
    ]

    /// Two grouped bar charts (SVG), one above the other: exits per MiB moved, and the estimated overhead
    /// in ms per MiB (cooperative's including the agent's work). One group per scenario that moved bytes,
    /// one bar per mode, log-scale y axes in decades. A mode without a value gets a "0" (or "-": not
    /// estimated) label at the axis instead of a bar (a log axis has no zero).
    public var exitsPerMiBSVG: String {
        let groups = scenarios.filter { $0.summary.bytes > 0 }
        let layout = ChartLayout(groups: groups.count)
        let exits = BarPanel(title: "VM exits per MiB moved, by mode and workload (log scale)", axis: "exits per MiB", unit: "exits/MiB",
                             top: 50, value: { $0.exitsPerMiB })
        let cost = BarPanel(title: "Estimated overhead per MiB moved (exits × exit cost + model updates × model cost + the agent's "
                            + "work for cooperative; log scale)", axis: "ms per MiB", unit: "ms/MiB",
                            top: 50 + layout.panelHeight + 60, value: { $0.overheadMillisecondsPerMiB })
        let legendY = cost.top + layout.plotHeight + 60
        var svg = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(layout.width))\" height=\"\(f(legendY + 50))\" "
                + "viewBox=\"0 0 \(f(layout.width)) \(f(legendY + 50))\" font-family=\"sans-serif\" font-size=\"12\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
        ]
        svg += exits.lines(groups: groups, layout: layout) + cost.lines(groups: groups, layout: layout)
        for (slot, mode) in Self.modeOrder.enumerated() {
            let x = layout.left + Double(slot) * 130
            svg.append("<rect x=\"\(f(x))\" y=\"\(f(legendY))\" width=\"14\" height=\"14\" fill=\"\(Self.modeColours[mode] ?? "black")\"/>")
            svg.append("<text x=\"\(f(x + 20))\" y=\"\(f(legendY + 12))\">\(mode.rawValue)</text>")
        }
        svg.append("<text x=\"\(f(layout.left))\" y=\"\(f(legendY + 36))\" font-size=\"10\" fill=\"#555\">exact exit counts from vpio-host's ledger, "
            + "all runs of a workload pooled; costs as measured by this compare (the report's cost lines); \(escaped(accelerator)) guest, "
            + "agent \(escaped(agent))</text>")
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    /// 10^n as "1", "10", …, "100k", "1M".
    static func decadeLabel(_ exponent: Int) -> String {
        switch exponent {
        case ..<0: return "1e\(exponent)"
        case 0...2: return "1" + String(repeating: "0", count: exponent)
        case 3...5: return "1" + String(repeating: "0", count: exponent - 3) + "k"
        default: return "1" + String(repeating: "0", count: exponent - 6) + "M"
        }
    }

    /// 1234 → "1.2k", 312000 → "312k", 42 → "42".
    static func compact(_ value: Double) -> String {
        if value >= 1e6 { return String(format: value >= 1e7 ? "%.0fM" : "%.1fM", value / 1e6) }
        if value >= 1e3 { return String(format: value >= 1e4 ? "%.0fk" : "%.1fk", value / 1e3) }
        return String(format: "%.0f", value)
    }
}

/// The horizontal layout both panels share.
struct ChartLayout {
    let barWidth = 34.0, gap = 8.0, groupGap = 46.0, left = 80.0, plotHeight = 300.0
    let groupWidth: Double, plotWidth: Double

    init(groups: Int) {
        groupWidth = Double(CompareReport.modeOrder.count) * (barWidth + gap) - gap
        plotWidth = max(Double(groups) * (groupWidth + groupGap) + groupGap, 300)
    }

    var width: Double { left + plotWidth + 20 }
    /// A panel: its plot and the two label lines under it.
    var panelHeight: Double { plotHeight + 40 }
}

/// One panel: a title, a log axis in decades, a bar per scenario and mode.
struct BarPanel {
    var title: String
    var axis: String
    var unit: String
    var top: Double
    var value: (ModeSummary) -> Double?

    func lines(groups: [Scenario], layout: ChartLayout) -> [String] {
        let values = groups.flatMap { g in CompareReport.modeOrder.compactMap { g.summary[$0].flatMap(value) } }.filter { $0 > 0 }
        let low = floor(log10(values.min() ?? 1)), high = max(ceil(log10(values.max() ?? 10)), low + 1)
        let left = layout.left, bottom = top + layout.plotHeight
        func y(_ v: Double) -> Double { top + layout.plotHeight * (1 - (log10(v) - low) / (high - low)) }
        var svg = ["<text x=\"\(f(layout.width / 2))\" y=\"\(f(top - 26))\" text-anchor=\"middle\" font-size=\"14\">\(escaped(title))</text>"]
        var decade = low
        while decade <= high {
            let yy = y(pow(10, decade))
            svg.append("<line x1=\"\(f(left))\" y1=\"\(f(yy))\" x2=\"\(f(left + layout.plotWidth))\" y2=\"\(f(yy))\" stroke=\"#ddd\"/>")
            svg.append("<text x=\"\(f(left - 6))\" y=\"\(f(yy + 4))\" text-anchor=\"end\">\(CompareReport.decadeLabel(Int(decade)))</text>")
            decade += 1
        }
        svg.append("<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(bottom))\" stroke=\"black\"/>")
        svg.append("<line x1=\"\(f(left))\" y1=\"\(f(bottom))\" x2=\"\(f(left + layout.plotWidth))\" y2=\"\(f(bottom))\" stroke=\"black\"/>")
        svg.append("<text transform=\"translate(18 \(f(top + layout.plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">\(escaped(axis))</text>")
        for (index, group) in groups.enumerated() {
            let x0 = left + layout.groupGap + Double(index) * (layout.groupWidth + layout.groupGap)
            for (slot, mode) in CompareReport.modeOrder.enumerated() {
                let x = x0 + Double(slot) * (layout.barWidth + layout.gap)
                svg.append(bar(x: x, bottom: bottom, width: layout.barWidth, value: group.summary[mode].flatMap(value),
                               mode: mode, group: group.name, y: y))
            }
            svg.append("<text x=\"\(f(x0 + layout.groupWidth / 2))\" y=\"\(f(bottom + 18))\" text-anchor=\"middle\">\(escaped(group.name))</text>")
            svg.append("<text x=\"\(f(x0 + layout.groupWidth / 2))\" y=\"\(f(bottom + 33))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#555\">"
                + "\(escaped(group.byteUnit))</text>")
        }
        return svg
    }

    private func bar(x: Double, bottom: Double, width: Double, value: Double?, mode: Mode, group: String, y: (Double) -> Double) -> String {
        guard let value, value > 0 else {
            return "<text x=\"\(f(x + width / 2))\" y=\"\(f(bottom - 4))\" text-anchor=\"middle\" font-size=\"10\">\(value == nil ? "-" : "0")</text>"
        }
        let yy = y(value)
        let label = value >= 1 ? CompareReport.compact(value) : String(format: "%.2g", value)
        return "<rect x=\"\(f(x))\" y=\"\(f(yy))\" width=\"\(f(width))\" height=\"\(f(bottom - yy))\" fill=\"\(CompareReport.modeColours[mode] ?? "black")\">"
            + "<title>\(escaped(group)) \(mode.rawValue): \(String(format: value >= 100 ? "%.0f" : "%.3g", value)) \(unit)</title></rect>"
            + "<text x=\"\(f(x + width / 2))\" y=\"\(f(yy - 4))\" text-anchor=\"middle\" font-size=\"10\">\(label)</text>"
    }
}

private func f(_ v: Double) -> String { String(format: "%.1f", v) }

private func escaped(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
}
