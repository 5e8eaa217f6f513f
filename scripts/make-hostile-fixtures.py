#!/usr/bin/env python3
"""Writes Tests/Fixtures/hostile/: small malformed or unusual inputs that must never crash
TernaryKit, each with the outcome the tests expect (see README.md there).

    python3 scripts/make-hostile-fixtures.py

Standard library only; the files are committed, this script documents how they were made.
"""
import json
import os
import struct
import unicodedata

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "hostile")


def safetensors(header_text, data=b""):
    """A file: 8-byte little-endian header length, the header bytes as given, the data."""
    header = header_text.encode("utf-8") if isinstance(header_text, str) else header_text
    return struct.pack("<Q", len(header)) + header + data


def header(entries):
    """Header text from (key, value) pairs, keys kept exactly (no normalisation, no dedup)."""
    return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + json.dumps(v, ensure_ascii=False)
                          for k, v in entries) + "}"


def tensor(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def write(name, content):
    path = os.path.join(ROOT, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content if isinstance(content, bytes) else content.encode("utf-8"))


nfc = unicodedata.normalize("NFC", "café")
nfd = unicodedata.normalize("NFD", "café")
assert nfc != nfd

files = {
    # Valid: two tensors whose names are canonically equivalent but differ in bytes, and two
    # such metadata keys. Hugging Face's reader loads it with two tensors.
    "nfc-nfd-names.safetensors": safetensors(header([
        ("__metadata__", {nfc: "composed", nfd: "decomposed"}),
        (nfc, tensor("F32", [1], 0, 4)),
        (nfd, tensor("F32", [1], 4, 8)),
    ]), struct.pack("<ff", 1.0, 2.0)),
    # Valid: "__metadata__": null means no metadata.
    "metadata-null.safetensors": safetensors(header([
        ("__metadata__", None), ("t", tensor("F32", [1], 0, 4))]), struct.pack("<f", 3.0)),
    # Valid: empty tensors whatever the order of the other (huge) dimensions.
    "zero-dimension-first.safetensors": safetensors(header([("e", tensor("F32", [0, 2**62, 2**62], 0, 0))])),
    "zero-dimension-last.safetensors": safetensors(header([("e", tensor("F32", [2**62, 2**62, 0], 0, 0))])),
    # Valid, hostile strings: names and metadata with escape sequences, a forged error line, a
    # C1 control (U+009B, CSI) and a bidirectional override.
    "escape-sequences.safetensors": safetensors(header([
        ("__metadata__", {"note\x1b[2J": "clear\x1b[2J\nError: forged line", "bidi": "\u202eevil"}),
        ("a\x1b[2Jb", tensor("F32", [1], 0, 4)),
        ("c\nError: forged", tensor("F32", [1], 4, 8)),
        ("d\u009b31m", tensor("F32", [1], 8, 12)),
    ]), struct.pack("<fff", 1.0, 2.0, 3.0)),
    # Invalid: an unknown dtype made of an escape sequence (the error quotes it, escaped).
    "escape-dtype.safetensors": safetensors(header([("t", tensor("\x1b[2J\nError: forged", [1], 0, 4))]), b"\0" * 4),
    # Invalid: non-zero dimensions whose product overflows.
    "shape-overflow.safetensors": safetensors(header([("t", tensor("F32", [2**62, 2**62, 1], 0, 4))]), b"\0" * 4),
    # Invalid: a header length far beyond the file.
    "header-length-huge.safetensors": struct.pack("<Q", 2**63 - 1) + b"{}",
    # Invalid: byte-identical duplicate keys.
    "duplicate-key.safetensors": safetensors('{"t":' + json.dumps(tensor("F32", [1], 0, 4)) + ',"t":'
                                             + json.dumps(tensor("F32", [1], 0, 4)) + "}", b"\0" * 4),
    # Invalid: nesting deeper than the parser's bound.
    "deep-nesting.safetensors": safetensors("[" * 100000 + "]" * 100000),
    # Invalid: data_offsets overflowing Int.
    "offsets-overflow.safetensors": safetensors('{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999999]}}'),
}
for name, content in files.items():
    write(name, content)

base_config = {
    "architectures": ["BitNetForCausalLM"], "model_type": "bitnet", "hidden_size": 64, "intermediate_size": 160,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "hidden_act": "relu2",
    "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "vocab_size": 256, "max_position_embeddings": 128,
    "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": True,
    "quantization_config": {"quant_method": "bitnet", "linear_class": "bitlinear", "quantization_mode": "offline"},
}
configs = {
    # vocab_size × hidden_size overflows Int.
    "config-vocab-overflow": {"vocab_size": 2**62, "hidden_size": 64},
    # Sizes that multiply to far more memory than any machine has (no overflow).
    "config-huge-model": {"vocab_size": 2**40, "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8},
    # A model_type that is an escape sequence and a forged line.
    "config-escape": {"model_type": "\x1b[2J\nError: forged"},
}
for name, changes in configs.items():
    config = dict(base_config)
    config.update(changes)
    write(os.path.join(name, "config.json"), json.dumps(config, indent=2) + "\n")
print("wrote", len(files), "files and", len(configs), "config directories to", os.path.normpath(ROOT))
