import Foundation

/// Minimal, dependency-free SVG charts for `ternary bench --plot`: line charts (linear or log
/// axes) and grouped bar charts, with a title, axis labels with units, a legend, and the
/// Okabe–Ito palette (distinguishable with common colour-vision deficiencies).
enum SVGChart {
    /// Okabe–Ito colours, then black.
    static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
    static let markers = ["circle", "square", "triangle", "diamond"]

    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
    }

    /// A line chart. Log axes need positive values; non-positive points are dropped.
    struct Line {
        var title: String
        var xLabel: String
        var yLabel: String
        var xLog = false
        var yLog = false
        var series: [Series]
        /// Tick labels for x (e.g. "2^11"); default: the numbers.
        var xTickFormat: ((Double) -> String)? = nil
    }

    /// A grouped bar chart: one group per category, one bar per series.
    struct Bars {
        var title: String
        var yLabel: String
        var categories: [String]
        var series: [(name: String, values: [Double])]
    }

    static let width = 760.0, height = 480.0
    static let left = 80.0, right = 200.0, top = 50.0, bottom = 70.0

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func fmt(_ v: Double) -> String {
        if v == 0 { return "0" }
        if v >= 1024, v == v.rounded(), v < 0x1p53, (Int(v) & (Int(v) - 1)) == 0 { return "2^\(Int(v).trailingZeroBitCount)" }
        let a = abs(v)
        if a >= 1e6 || a < 1e-3 { return String(format: "%.0e", v) }
        if a >= 100 || v == v.rounded() { return String(format: "%.0f", v) }
        if a >= 10 { return String(format: "%.1f", v) }
        return String(format: "%.2g", v)
    }

    /// Axis mapping and ticks for one dimension.
    struct Axis {
        let lo: Double, hi: Double, log: Bool
        let pixelLo: Double, pixelHi: Double
        /// Log axis whose values are all powers of two (the paper's n sweep): ticks at powers of two.
        let base2: Bool

        init(values: [Double], log: Bool, pixelLo: Double, pixelHi: Double, includeZero: Bool = false) {
            var lo = values.min() ?? 0, hi = values.max() ?? 1
            base2 = log && values.allSatisfy { $0 >= 1 && $0 == $0.rounded() && (Int($0) & (Int($0) - 1)) == 0 }
            if base2 {
                if lo == hi { lo /= 2; hi *= 2 }
            } else if log {
                lo = Foundation.pow(10, Foundation.floor(Foundation.log10(lo)))
                hi = Foundation.pow(10, Foundation.ceil(Foundation.log10(hi)))
                if lo == hi { hi = lo * 10 }
            } else {
                if includeZero { lo = min(lo, 0) }
                if lo == hi { hi = lo + 1 }
                let pad = (hi - lo) * 0.05
                hi += pad
                if !includeZero { lo -= pad }
            }
            self.lo = lo; self.hi = hi; self.log = log
            self.pixelLo = pixelLo; self.pixelHi = pixelHi
        }

        func map(_ v: Double) -> Double {
            let t = log ? (Foundation.log10(v) - Foundation.log10(lo)) / (Foundation.log10(hi) - Foundation.log10(lo))
                        : (v - lo) / (hi - lo)
            return pixelLo + t * (pixelHi - pixelLo)
        }

        /// Powers of 10 (with 2× and 5× when there are few decades) on log axes; ~6 round steps otherwise.
        var ticks: [Double] {
            if base2 {
                var t: [Double] = []
                var d = lo
                while d <= hi * 1.0001 { t.append(d); d *= 2 }
                return t
            }
            if log {
                var t: [Double] = []
                var d = lo
                let decades = Int((Foundation.log10(hi) - Foundation.log10(lo)).rounded())
                while d <= hi * 1.0001 {
                    t.append(d)
                    if decades <= 2 { for m in [2.0, 5.0] where d * m < hi { t.append(d * m) } }
                    d *= 10
                }
                return t
            }
            let raw = (hi - lo) / 6
            let mag = Foundation.pow(10, Foundation.floor(Foundation.log10(raw)))
            let step = [1.0, 2.0, 5.0, 10.0].map { $0 * mag }.first { $0 >= raw } ?? raw
            var t: [Double] = []
            var v = Foundation.ceil(lo / step) * step
            while v <= hi + step * 1e-9 { t.append(v); v += step }
            return t
        }
    }

    static func frame(title: String, xLabel: String, yLabel: String) -> [String] {
        [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"13\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text x=\"\((left + width - right) / 2)\" y=\"28\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">\(escape(title))</text>",
            "<text x=\"\((left + width - right) / 2)\" y=\"\(height - 18)\" text-anchor=\"middle\">\(escape(xLabel))</text>",
            "<text transform=\"translate(20,\((top + height - bottom) / 2)) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>",
        ]
    }

    static func legend(_ names: [String]) -> [String] {
        var out: [String] = []
        for (i, name) in names.enumerated() {
            let y = top + 10 + Double(i) * 22
            let c = palette[i % palette.count]
            out.append("<rect x=\"\(width - right + 20)\" y=\"\(y - 9)\" width=\"14\" height=\"14\" fill=\"\(c)\"/>")
            out.append("<text x=\"\(width - right + 40)\" y=\"\(y + 3)\">\(escape(name))</text>")
        }
        return out
    }

    static func render(_ chart: Line) -> String {
        let series = chart.series.map { s in
            Series(name: s.name, points: s.points.filter { (!chart.xLog || $0.x > 0) && (!chart.yLog || $0.y > 0) && $0.x.isFinite && $0.y.isFinite })
        }
        let xs = series.flatMap { $0.points.map(\.x) }, ys = series.flatMap { $0.points.map(\.y) }
        var out = frame(title: chart.title, xLabel: chart.xLabel, yLabel: chart.yLabel)
        guard !xs.isEmpty else {
            out.append("<text x=\"\(width / 2)\" y=\"\(height / 2)\" text-anchor=\"middle\">no data</text></svg>")
            return out.joined(separator: "\n")
        }
        let xa = Axis(values: xs, log: chart.xLog, pixelLo: left, pixelHi: width - right)
        let ya = Axis(values: ys, log: chart.yLog, pixelLo: height - bottom, pixelHi: top, includeZero: !chart.yLog)
        out += axes(xa: xa, ya: ya, xTick: chart.xTickFormat ?? fmt)
        for (i, s) in series.enumerated() where !s.points.isEmpty {
            let c = palette[i % palette.count]
            let pts = s.points.sorted { $0.x < $1.x }.map { "\(String(format: "%.1f", xa.map($0.x))),\(String(format: "%.1f", ya.map($0.y)))" }
            out.append("<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"2\" points=\"\(pts.joined(separator: " "))\"/>")
            for p in s.points {
                out.append(marker(markers[i % markers.count], x: xa.map(p.x), y: ya.map(p.y), color: c))
            }
        }
        out += legend(series.map(\.name))
        out.append("</svg>")
        return out.joined(separator: "\n")
    }

    static func render(_ chart: Bars) -> String {
        var out = frame(title: chart.title, xLabel: "", yLabel: chart.yLabel)
        let values = chart.series.flatMap(\.values).filter(\.isFinite)
        let ya = Axis(values: values.isEmpty ? [0, 1] : values, log: false, pixelLo: height - bottom, pixelHi: top, includeZero: true)
        let plotW = width - right - left
        let groupW = plotW / Double(max(1, chart.categories.count))
        let barW = groupW * 0.8 / Double(max(1, chart.series.count))
        out += axes(xa: nil, ya: ya, xTick: fmt)
        for (ci, cat) in chart.categories.enumerated() {
            let gx = left + Double(ci) * groupW
            out.append("<text x=\"\(gx + groupW / 2)\" y=\"\(height - bottom + 18)\" text-anchor=\"middle\">\(escape(cat))</text>")
            for (si, s) in chart.series.enumerated() where ci < s.values.count && s.values[ci].isFinite {
                let v = s.values[ci]
                let x = gx + groupW * 0.1 + Double(si) * barW
                let y0 = ya.map(0), y1 = ya.map(v)
                out.append("<rect x=\"\(String(format: "%.1f", x))\" y=\"\(String(format: "%.1f", min(y0, y1)))\" width=\"\(String(format: "%.1f", barW * 0.92))\" height=\"\(String(format: "%.1f", abs(y0 - y1)))\" fill=\"\(palette[si % palette.count])\"><title>\(escape(s.name)) \(escape(cat)): \(fmt(v))</title></rect>")
            }
        }
        out += legend(chart.series.map(\.name))
        out.append("</svg>")
        return out.joined(separator: "\n")
    }

    static func axes(xa: Axis?, ya: Axis, xTick: (Double) -> String) -> [String] {
        var out: [String] = []
        let x0 = left, x1 = width - right, y0 = height - bottom, y1 = top
        for t in ya.ticks {
            let y = ya.map(t)
            guard y >= y1 - 0.5 && y <= y0 + 0.5 else { continue }
            out.append("<line x1=\"\(x0)\" y1=\"\(y)\" x2=\"\(x1)\" y2=\"\(y)\" stroke=\"#e0e0e0\"/>")
            out.append("<text x=\"\(x0 - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(escape(fmt(t)))</text>")
        }
        if let xa {
            for t in xa.ticks {
                let x = xa.map(t)
                guard x >= x0 - 0.5 && x <= x1 + 0.5 else { continue }
                out.append("<line x1=\"\(x)\" y1=\"\(y1)\" x2=\"\(x)\" y2=\"\(y0)\" stroke=\"#e0e0e0\"/>")
                out.append("<text x=\"\(x)\" y=\"\(y0 + 18)\" text-anchor=\"middle\">\(escape(xTick(t)))</text>")
            }
        }
        out.append("<line x1=\"\(x0)\" y1=\"\(y0)\" x2=\"\(x1)\" y2=\"\(y0)\" stroke=\"black\"/>")
        out.append("<line x1=\"\(x0)\" y1=\"\(y0)\" x2=\"\(x0)\" y2=\"\(y1)\" stroke=\"black\"/>")
        return out
    }

    static func marker(_ kind: String, x: Double, y: Double, color: String) -> String {
        let r = 4.0
        switch kind {
        case "square":
            return "<rect x=\"\(x - r)\" y=\"\(y - r)\" width=\"\(2 * r)\" height=\"\(2 * r)\" fill=\"\(color)\"/>"
        case "triangle":
            return "<polygon points=\"\(x),\(y - r - 1) \(x - r - 1),\(y + r) \(x + r + 1),\(y + r)\" fill=\"\(color)\"/>"
        case "diamond":
            return "<polygon points=\"\(x),\(y - r - 1) \(x + r + 1),\(y) \(x),\(y + r + 1) \(x - r - 1),\(y)\" fill=\"\(color)\"/>"
        default:
            return "<circle cx=\"\(x)\" cy=\"\(y)\" r=\"\(r)\" fill=\"\(color)\"/>"
        }
    }
}
