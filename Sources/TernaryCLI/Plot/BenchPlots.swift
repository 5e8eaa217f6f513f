import Foundation
import TensorCore

/// The charts `ternary bench --plot DIR` writes from its measurements.
enum BenchPlots {
    /// Writes every chart the measurements support; returns the file names. The directory is
    /// created if needed; each file is written atomically.
    static func write(_ ms: [BenchMeasurement], to dir: String) throws -> [String] {
        var files: [(String, String)] = []

        // Time against n on log axes, per (batch, threads, regime), when square shapes vary.
        let square = ms.filter { $0.out == $0.in }
        for key in Set(square.map { "\($0.batch)|\($0.threads)|\($0.regime)" }).sorted() {
            let group = square.filter { "\($0.batch)|\($0.threads)|\($0.regime)" == key }
            guard Set(group.map(\.out)).count >= 2 else { continue }
            let parts = key.split(separator: "|")
            let chart = SVGChart.Line(
                title: "Product time against n (n×n, batch \(parts[0]), \(parts[1]) thread(s), \(parts[2]))",
                xLabel: "n (weights per row = rows)", yLabel: "median time per product (µs)",
                xLog: true, yLog: true, series: seriesByBackend(group) { (Double($0.out), $0.medianMicros) })
            files.append(("time-vs-n-b\(parts[0])-t\(parts[1])-\(parts[2]).svg", SVGChart.render(chart)))
        }

        // k sweep: time against k per backend, per (shape, batch, threads, regime).
        let withK = ms.filter { $0.k != nil }
        for key in Set(withK.map { "\($0.out)x\($0.in)|\($0.batch)|\($0.threads)|\($0.regime)" }).sorted() {
            let group = withK.filter { "\($0.out)x\($0.in)|\($0.batch)|\($0.threads)|\($0.regime)" == key }
            // A sweep: some backend measured at two or more k (not just rsr and rsr++ at their defaults).
            guard Set(group.map(\.backend)).contains(where: { b in Set(group.filter { $0.backend == b }.compactMap(\.k)).count >= 2 })
            else { continue }
            let parts = key.split(separator: "|")
            let chart = SVGChart.Line(
                title: "k sweep, \(parts[0]), batch \(parts[1]), \(parts[2]) thread(s)",
                xLabel: "block height k (rows per block)", yLabel: "median time per product (µs)",
                series: seriesByBackend(group) { (Double($0.k!), $0.medianMicros) })
            files.append(("k-sweep-\(parts[0])-b\(parts[1])-t\(parts[2])-\(parts[3]).svg", SVGChart.render(chart)))
        }

        // Bits per weight per backend (the first measurement of each backend).
        var bits: [(String, Double)] = []
        for m in ms where !bits.contains(where: { $0.0 == m.name }) { bits.append((m.name, m.bitsPerWeight)) }
        if !bits.isEmpty {
            let chart = SVGChart.Bars(title: "Storage per weight", yLabel: "bits per weight kept",
                                      categories: bits.map(\.0), series: [("bits / weight", bits.map(\.1))])
            files.append(("bits-per-weight.svg", SVGChart.render(chart)))
        }

        // Throughput per shape and backend, per (batch, threads, regime).
        for key in Set(ms.map { "\($0.batch)|\($0.threads)|\($0.regime)" }).sorted() {
            let group = ms.filter { "\($0.batch)|\($0.threads)|\($0.regime)" == key }
            var shapes: [String] = []
            for m in group where !shapes.contains("\(m.out)x\(m.in)") { shapes.append("\(m.out)x\(m.in)") }
            var names: [String] = []
            for m in group where !names.contains(label(m)) { names.append(label(m)) }
            let series = names.map { name in
                (name, shapes.map { s in group.first { label($0) == name && "\($0.out)x\($0.in)" == s }.map { $0.weightsPerSecond / 1e9 } ?? .nan })
            }
            let parts = key.split(separator: "|")
            let chart = SVGChart.Bars(
                title: "Throughput, batch \(parts[0]), \(parts[1]) thread(s), \(parts[2])",
                yLabel: "billions of weights × batch rows per second", categories: shapes, series: series)
            files.append(("throughput-b\(parts[0])-t\(parts[1])-\(parts[2]).svg", SVGChart.render(chart)))
        }

        try writeFiles(files, to: dir)
        return files.map(\.0)
    }

    /// Writes `(name, svg)` pairs into `dir` (created if needed), each file atomically.
    static func writeFiles(_ files: [(String, String)], to dir: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw TernaryKitError.file(path: dir, problem: "cannot create the plot directory: \(error.localizedDescription)")
        }
        for (name, svg) in files {
            let url = URL(fileURLWithPath: dir).appendingPathComponent(name)
            do {
                try Data(svg.utf8).write(to: url, options: .atomic)
            } catch {
                throw TernaryKitError.file(path: url.path, problem: "cannot write: \(error.localizedDescription)")
            }
        }
    }

    static func label(_ m: BenchMeasurement) -> String { m.name }

    static func seriesByBackend(_ ms: [BenchMeasurement], _ point: (BenchMeasurement) -> (Double, Double)) -> [SVGChart.Series] {
        var names: [String] = []
        for m in ms where !names.contains(m.name) { names.append(m.name) }
        return names.map { name in
            SVGChart.Series(name: name, points: ms.filter { $0.name == name }.map { let p = point($0); return (x: p.0, y: p.1) })
        }
    }
}
