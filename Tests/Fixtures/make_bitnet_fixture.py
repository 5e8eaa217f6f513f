#!/usr/bin/env python3
"""Writes Tests/Fixtures/tiny-bitnet/: a tiny Hugging Face-format BitNet b1.58 checkpoint and the
logits a correct implementation must produce from it.

Independent of TernaryKit on purpose (numpy only, its own safetensors writer, its own forward
pass), so that a bug shared by TernaryKit's reader, writer and model cannot hide.

Outputs (next to this script):
  tiny-bitnet/config.json          Hugging Face field names (BitNetConfig)
  tiny-bitnet/model.safetensors    U8 four-plane packed projections, BF16 weight_scale,
                                   BF16 embedding and norm weights, HF tensor names
  tiny-bitnet/expected_logits.json {"tokens": [...], "logits": [[vocab floats] per position]}

The reference forward pass runs in float64 on exactly the values stored in the file (BF16
values decoded, ternary weights unpacked from the stored bytes), so the file is the single source
of truth. Conventions and where they come from:

- BitLinear (transformers/integrations/bitnet.py, class BitLinear, linear_class "bitlinear"):
    activation_quant: s = 127 / clamp(max|x| over the last dim, min=1e-5);
                      x_q = clamp(round(x * s), -128, 127)   (torch.round: half to even)
    forward:          y = F.linear(x_q, unpack_weights(weight)) then
                      post_quant_process(y, weight_scale, s) = y / (weight_scale * s)
  so the stored weight_scale is 1/gamma and the layer DIVIDES by it.
- Packing (same file, pack_weights / unpack_weights): U8 [out/4, in]; with R = out/4, bits
  2i..2i+1 of packed[r, c] hold W[i*R + r, c] + 1.
- RMSNorm (transformers/models/llama/modeling_llama.py, LlamaRMSNorm, reused by BitNetRMSNorm):
  x * rsqrt(mean(x^2, last dim) + eps) * weight.
- RoPE (modeling_llama.py: LlamaRotaryEmbedding, rotate_half, apply_rotary_pos_emb): inv_freq[j]
  = 1 / theta^(2j / head_dim) for j < head_dim/2; angle = position * inv_freq, duplicated to the
  full head dim (cat(freqs, freqs)); q' = q*cos + rotate_half(q)*sin with
  rotate_half(x) = cat(-x[half:], x[:half]) (non-interleaved halves). Positions 0..T-1.
- Attention (modeling_llama.py eager_attention_forward, repeat_kv; modular_bitnet.py
  BitNetAttention): scores = q k^T * head_dim^-0.5, causal mask, softmax, times v; KV head
  h // (heads / kv_heads) serves query head h; heads concatenated; then attn_sub_norm
  (BitNet's difference from Llama), then o_proj.
- MLP (modular_bitnet.py BitNetMLP(GemmaMLP)): down_proj(ffn_sub_norm(act(gate_proj(x)) *
  up_proj(x))) with hidden_act "relu2" = relu(x)^2 (transformers activations.py,
  ReLUSquaredActivation).
- Decoder layer (LlamaDecoderLayer): h = x + attn(input_layernorm(x));
  out = h + mlp(post_attention_layernorm(h)).
- Model (LlamaModel / LlamaForCausalLM with tie_word_embeddings): final model.norm, then
  logits = h @ embed_tokens.weight^T (no lm_head.weight tensor in the file).

Robustness: a Float32 implementation differs from this float64 reference by ~1e-6 relative, so
an activation whose x*s lies very near a .5 rounding boundary could round the other way there.
After computing, the script checks every quantization input x*s (that is not clipped) is at least
MARGIN away from a .5 boundary; if not, it tries the next seed, and prints the seed it used.

Usage: python3 make_bitnet_fixture.py [first_seed]
"""

import json
import os
import struct
import sys

import numpy as np

CONFIG = {
    "architectures": ["BitNetForCausalLM"],
    "model_type": "bitnet",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "hidden_act": "relu2",
    "rms_norm_eps": 1e-5,
    # Not the 2B4T value (500000), so a loader that ignores the config's theta fails the test.
    "rope_theta": 10000.0,
    "vocab_size": 256,
    "max_position_embeddings": 128,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": True,
    "attention_bias": False,
    "torch_dtype": "bfloat16",
    "quantization_config": {
        "quant_method": "bitnet",
        "linear_class": "bitlinear",
        "quantization_mode": "offline",
    },
}
TOKENS = [1, 17, 42, 200, 99, 255]
MARGIN = 1e-3
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny-bitnet")


# ---------------------------------------------------------------- bfloat16 and packing helpers

def to_bf16_bits(x):
    """float32 -> bfloat16 bit patterns (uint16), round to nearest even (finite inputs)."""
    b = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return b.astype(np.uint16)


def from_bf16_bits(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def pack_ternary(w):
    """int [out, in] in {-1,0,1} -> uint8 [out/4, in]: bits 2i..2i+1 of packed[r, c] = w[i*R + r, c] + 1."""
    out, _ = w.shape
    assert out % 4 == 0
    r = out // 4
    codes = (w + 1).astype(np.uint8)
    packed = np.zeros((r, w.shape[1]), dtype=np.uint8)
    for i in range(4):
        packed |= codes[i * r:(i + 1) * r] << (2 * i)
    return packed


def unpack_ternary(packed):
    r = packed.shape[0]
    planes = [((packed >> (2 * i)) & 3).astype(np.int64) for i in range(4)]
    assert all((p != 3).all() for p in planes)
    return np.concatenate(planes, axis=0) - 1


# ---------------------------------------------------------------- safetensors writer (independent)

def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, dtype string, shape, raw bytes) in file order."""
    header = {"__metadata__": metadata}
    offset = 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, raw in tensors:
            f.write(raw)
    os.replace(tmp, path)


# ---------------------------------------------------------------- model construction

def build(seed):
    """Random weights, rounded to what the file stores. Returns (file tensors, float64 params)."""
    rng = np.random.default_rng(seed)
    c = CONFIG
    d, f, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    heads, kv = c["num_attention_heads"], c["num_key_value_heads"]
    hd = d // heads
    tensors, params = [], {}

    def bf16(name, values):
        bits = to_bf16_bits(values)
        tensors.append((name, "BF16", values.shape, bits.astype("<u2").tobytes()))
        params[name] = from_bf16_bits(bits).reshape(values.shape)

    def bitlinear(prefix, out_f, in_f):
        w = rng.integers(-1, 2, size=(out_f, in_f))
        packed = pack_ternary(w)
        tensors.append((prefix + ".weight", "U8", packed.shape, packed.tobytes()))
        params[prefix + ".weight"] = unpack_ternary(packed).astype(np.float64)
        # weight_scale = 1/gamma; gamma ~ 1/(expected |W_t x|) keeps activations O(1).
        gamma = rng.uniform(0.6, 1.4) / np.sqrt(in_f * 2 / 3)
        bf16(prefix + ".weight_scale", np.array([1.0 / gamma], dtype=np.float32))

    bf16("model.embed_tokens.weight", rng.normal(0, 1, size=(v, d)).astype(np.float32))
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        bf16(p + "input_layernorm.weight", (1 + 0.2 * rng.normal(size=d)).astype(np.float32))
        bitlinear(p + "self_attn.q_proj", heads * hd, d)
        bitlinear(p + "self_attn.k_proj", kv * hd, d)
        bitlinear(p + "self_attn.v_proj", kv * hd, d)
        bitlinear(p + "self_attn.o_proj", d, heads * hd)
        bf16(p + "self_attn.attn_sub_norm.weight", (1 + 0.2 * rng.normal(size=d)).astype(np.float32))
        bf16(p + "post_attention_layernorm.weight", (1 + 0.2 * rng.normal(size=d)).astype(np.float32))
        bitlinear(p + "mlp.gate_proj", f, d)
        bitlinear(p + "mlp.up_proj", f, d)
        bitlinear(p + "mlp.down_proj", d, f)
        bf16(p + "mlp.ffn_sub_norm.weight", (1 + 0.2 * rng.normal(size=f)).astype(np.float32))
    bf16("model.norm.weight", (1 + 0.2 * rng.normal(size=d)).astype(np.float32))
    return tensors, params


# ---------------------------------------------------------------- float64 reference forward pass

class TooCloseToTie(Exception):
    pass


def rms_norm(x, w, eps):
    dt = x.dtype.type
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + dt(eps)) * w


def bit_linear(x, w_t, weight_scale, what, margins):
    dt = x.dtype.type
    s = dt(127.0) / np.maximum(np.max(np.abs(x), axis=-1, keepdims=True), dt(1e-5))
    xs = x * s
    if margins is None:  # the float32 cross-check run: no margin bookkeeping
        x_q = np.clip(np.round(xs), -128, 127)
        return (x_q @ w_t.T) / (s * weight_scale)
    inside = np.abs(xs) < 127.5  # values beyond are clipped whichever way they round
    distance = np.abs(np.abs(xs - np.floor(xs)) - 0.5)[inside]
    margins.append((float(distance.min()), what))
    if distance.min() < MARGIN:
        raise TooCloseToTie(f"{what}: x*s within {distance.min():.2e} of a .5 boundary")
    x_q = np.clip(np.round(xs), -128, 127)  # np.round: half to even, like torch.round
    return (x_q @ w_t.T) / (s * weight_scale)


def rope(x, theta):
    """x: [T, heads, head_dim]; HF rotate_half convention, positions 0..T-1."""
    t, _, hd = x.shape
    inv_freq = 1.0 / theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    angles = np.arange(t, dtype=np.float64)[:, None] * inv_freq[None, :]
    emb = np.concatenate([angles, angles], axis=-1)
    cos, sin = np.cos(emb)[:, None, :].astype(x.dtype), np.sin(emb)[:, None, :].astype(x.dtype)
    half = hd // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


def forward(params, tokens, dtype=np.float64):
    """The reference in float64 (with margin checks), or in `dtype` (float32: the cross-check
    that a Float32 implementation of the same conventions lands within the test tolerance)."""
    c = CONFIG
    check = dtype == np.float64
    params = {name: value.astype(dtype) for name, value in params.items()}
    d, heads, kv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    hd, eps, theta = d // heads, c["rms_norm_eps"], c["rope_theta"]
    t = len(tokens)
    margins = [] if check else None
    x = params["model.embed_tokens.weight"][tokens]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."

        def lin(name, inp):
            return bit_linear(inp, params[p + name + ".weight"], params[p + name + ".weight_scale"][0],
                              p + name, margins)

        n1 = rms_norm(x, params[p + "input_layernorm.weight"], eps)
        q = rope(lin("self_attn.q_proj", n1).reshape(t, heads, hd), theta)
        k = rope(lin("self_attn.k_proj", n1).reshape(t, kv, hd), theta)
        v = lin("self_attn.v_proj", n1).reshape(t, kv, hd)
        group = heads // kv
        out = np.zeros((t, heads, hd), dtype=dtype)
        mask = np.triu(np.full((t, t), -np.inf, dtype=dtype), k=1)
        for h in range(heads):
            scores = q[:, h, :] @ k[:, h // group, :].T / dtype(np.sqrt(hd)) + mask
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            probs = scores / scores.sum(axis=-1, keepdims=True)
            out[:, h, :] = probs @ v[:, h // group, :]
        attn = rms_norm(out.reshape(t, heads * hd), params[p + "self_attn.attn_sub_norm.weight"], eps)
        h_res = x + lin("self_attn.o_proj", attn)
        n2 = rms_norm(h_res, params[p + "post_attention_layernorm.weight"], eps)
        gated = np.maximum(lin("mlp.gate_proj", n2), 0) ** 2 * lin("mlp.up_proj", n2)
        x = h_res + lin("mlp.down_proj", rms_norm(gated, params[p + "mlp.ffn_sub_norm.weight"], eps))
    h = rms_norm(x, params["model.norm.weight"], eps)
    return h @ params["model.embed_tokens.weight"].T, margins


def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    for attempt in range(100000):
        tensors, params = build(seed)
        try:
            logits, margins = forward(params, TOKENS)
            break
        except TooCloseToTie:
            seed += 1
    else:
        sys.exit("no seed found")
    worst = min(margins)
    print(f"seed {seed} (after {attempt + 1} attempts); smallest distance of x*s from a .5 boundary: "
          f"{worst[0]:.3e} in {worst[1]}; logits range [{logits.min():.3f}, {logits.max():.3f}]")
    logits32, _ = forward(params, TOKENS, dtype=np.float32)
    gap = float(np.max(np.abs(logits32.astype(np.float64) - logits)))
    print(f"float32 run of the same conventions: max |logit difference| {gap:.2e}")
    if gap > 1e-4:
        sys.exit("the float32 cross-check differs by more than the 1e-4 test tolerance")

    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(OUT_DIR, "model.safetensors"), tensors,
                      {"format": "pt", "writer": "make_bitnet_fixture.py", "seed": str(seed)})
    with open(os.path.join(OUT_DIR, "expected_logits.json"), "w") as f:
        f.write('{"tokens": ' + json.dumps(TOKENS) + ', "logits": [\n')
        f.write(",\n".join("[" + ", ".join(repr(float(z)) for z in row) + "]" for row in logits))
        f.write("\n]}\n")


if __name__ == "__main__":
    main()
