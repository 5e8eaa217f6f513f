// Layers: BitLinear and the BitNet b1.58 transformer, built on TensorCore and Backends.
// (Grows with the layers issue.)
import Backends
import TensorCore
