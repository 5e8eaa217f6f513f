// The one constant of the Layers module that BitNetConfig needs, so the fuzz build does not
// compile the layers and backends (and link OpenBLAS). Must match `LMHead.int4GroupSize`.
enum LMHead {
    static let int4GroupSize = 32
}
