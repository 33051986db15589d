import Foundation
import VPIOMonitor

extension CompareReport {
    /// The bar colour of each mode.
    static let modeColours: [Mode: String] = [
        .emulated: "#c0392b", .vmmModel: "#e67e22", .cooperative: "#2980b9", .onDemand: "#27ae60", .passthrough: "#7f8c8d",
    ]

    /// A grouped bar chart (SVG) of exits per MiB moved: one group per scenario that moved bytes, one bar
    /// per mode, log-scale y axis in decades. A mode without exits gets a "0" label at the axis instead of
    /// a bar (a log axis has no zero).
    public var exitsPerMiBSVG: String {
        let groups = scenarios.filter { $0.summary.bytes > 0 }
        let values = groups.flatMap { g in Self.modeOrder.compactMap { g.summary[$0]?.exitsPerMiB } }.filter { $0 > 0 }
        let low = floor(log10(values.min() ?? 1)), high = max(ceil(log10(values.max() ?? 10)), low + 1)
        let barWidth = 34.0, gap = 8.0, groupGap = 46.0
        let left = 80.0, top = 50.0, plotHeight = 300.0, bottom = 110.0
        let groupWidth = Double(Self.modeOrder.count) * (barWidth + gap) - gap
        let plotWidth = max(Double(groups.count) * (groupWidth + groupGap) + groupGap, 300)
        let width = left + plotWidth + 20, height = top + plotHeight + bottom
        func y(_ value: Double) -> Double { top + plotHeight * (1 - (log10(value) - low) / (high - low)) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }

        var svg = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" height=\"\(f(height))\" viewBox=\"0 0 \(f(width)) \(f(height))\" "
                + "font-family=\"sans-serif\" font-size=\"12\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text x=\"\(f(width / 2))\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">VM exits per MiB moved, by mode and workload (log scale)</text>",
        ]
        var decade = low
        while decade <= high {
            let yy = y(pow(10, decade))
            svg.append("<line x1=\"\(f(left))\" y1=\"\(f(yy))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(yy))\" stroke=\"#ddd\"/>")
            svg.append("<text x=\"\(f(left - 6))\" y=\"\(f(yy + 4))\" text-anchor=\"end\">\(Self.decadeLabel(Int(decade)))</text>")
            decade += 1
        }
        svg.append("<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(top + plotHeight))\" stroke=\"black\"/>")
        svg.append("<line x1=\"\(f(left))\" y1=\"\(f(top + plotHeight))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(top + plotHeight))\" stroke=\"black\"/>")
        svg.append("<text transform=\"translate(18 \(f(top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">exits per MiB</text>")

        for (index, group) in groups.enumerated() {
            let x0 = left + groupGap + Double(index) * (groupWidth + groupGap)
            for (slot, mode) in Self.modeOrder.enumerated() {
                let x = x0 + Double(slot) * (barWidth + gap)
                let value = group.summary[mode]?.exitsPerMiB ?? 0
                if value > 0 {
                    let yy = y(value)
                    svg.append("<rect x=\"\(f(x))\" y=\"\(f(yy))\" width=\"\(f(barWidth))\" height=\"\(f(top + plotHeight - yy))\" "
                        + "fill=\"\(Self.modeColours[mode] ?? "black")\"><title>\(esc(group.name)) \(mode.rawValue): \(String(format: "%.0f", value)) exits/MiB</title></rect>")
                    svg.append("<text x=\"\(f(x + barWidth / 2))\" y=\"\(f(yy - 4))\" text-anchor=\"middle\" font-size=\"10\">\(Self.compact(value))</text>")
                } else {
                    svg.append("<text x=\"\(f(x + barWidth / 2))\" y=\"\(f(top + plotHeight - 4))\" text-anchor=\"middle\" font-size=\"10\">0</text>")
                }
            }
            svg.append("<text x=\"\(f(x0 + groupWidth / 2))\" y=\"\(f(top + plotHeight + 18))\" text-anchor=\"middle\">\(esc(group.name))</text>")
            svg.append("<text x=\"\(f(x0 + groupWidth / 2))\" y=\"\(f(top + plotHeight + 33))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#555\">"
                + "\(esc(group.byteUnit))</text>")
        }
        let legendY = top + plotHeight + 60
        for (slot, mode) in Self.modeOrder.enumerated() {
            let x = left + Double(slot) * 130
            svg.append("<rect x=\"\(f(x))\" y=\"\(f(legendY))\" width=\"14\" height=\"14\" fill=\"\(Self.modeColours[mode] ?? "black")\"/>")
            svg.append("<text x=\"\(f(x + 20))\" y=\"\(f(legendY + 12))\">\(mode.rawValue)</text>")
        }
        svg.append("<text x=\"\(f(left))\" y=\"\(f(legendY + 36))\" font-size=\"10\" fill=\"#555\">exact exit counts from vpio-host's ledger, "
            + "all runs of a workload pooled; \(esc(accelerator)) guest, agent \(esc(agent))</text>")
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
