import BitNet
import Layers
import TensorCore

extension BitNetModel {
    /// Runs `tokens` as one sequence (the cache is reset first and after) and compares the
    /// logits of both LM head formats at every position.
    /// - Throws: as `hiddenStates(_:)`.
    func compareLMHeadFormats(tokens: [Int], format: LMHeadFormat = .int8) throws -> LMHeadComparison {
        resetCache()
        defer { resetCache() }
        let hidden = try hiddenStates(tokens)
        let v = config.vocabSize, n = tokens.count
        let ws = Workspace()
        let heads = try [LMHeadFormat.float32, format].map {
            try LMHead(weight: lmHead.weight, vocabularySize: v, dimensions: config.hiddenSize, format: $0,
                       tied: lmHead.tied, threads: context.threads, workspace: ws)
        }
        var out = [[Float]](repeating: [Float](repeating: 0, count: n * v), count: 2)
        for (i, head) in heads.enumerated() {
            hidden.withUnsafeBufferPointer { h in out[i].withUnsafeMutableBufferPointer { head(h, rows: n, into: $0) } }
        }
        let exact = out[0], small = out[1]
        var result = LMHeadComparison(format: format, positions: n, maxAbsoluteDifference: 0, meanAbsoluteDifference: 0,
                                      maxRelativeDifference: 0, argmaxAgreements: 0, top5Agreements: 0)
        var sum: Double = 0
        for p in 0..<n {
            let a = exact[(p * v)..<((p + 1) * v)], b = small[(p * v)..<((p + 1) * v)]
            var rowMax: Float = 0, rowLogitMax: Float = 0
            for (x, y) in zip(a, b) {
                let d = abs(x - y)
                rowMax = max(rowMax, d)
                rowLogitMax = max(rowLogitMax, abs(x))
                sum += Double(d)
            }
            result.maxAbsoluteDifference = max(result.maxAbsoluteDifference, rowMax)
            result.maxRelativeDifference = max(result.maxRelativeDifference, rowMax / rowLogitMax)
            let ia = a.indices.max { a[$0] < a[$1] }!, ib = b.indices.max { b[$0] < b[$1] }!
            if ia == ib { result.argmaxAgreements += 1 }
            let top5 = b.indices.sorted { b[$0] > b[$1] }.prefix(5)
            if top5.contains(ia) { result.top5Agreements += 1 }
        }
        result.meanAbsoluteDifference = Float(sum / Double(n * v))
        return result
    }
}
