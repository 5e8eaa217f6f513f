#!/usr/bin/env python3
"""Writes ternarize/fixture.json: float matrices and what ternarizing them must give.

Independent of TernaryKit (numpy only), so that a bug in the Swift ternarization or in its
LAPACK-based low-rank correction cannot hide behind a shared implementation.

Rules (BitNet b1.58 absmean, per tensor):
  gamma = float32(max(mean|W| (in float64), 1e-5))
  codes = clip(round_half_even(W / gamma) in float32, -1, 1)
  relative_error = ||W - gamma*T||_F / ||W||_F                    (float64)
  corrected_error(r) = sqrt(sum_{i>=r} s_i^2) / ||W||_F          (Eckart-Young, s = singular
                       values of the float64 residual W - gamma*T, np.linalg.svd)
A requested rank above min(out, in) is clamped to min(out, in) ("clamped": true).

Matrices are stored as the uint32 bit patterns of their float32 values ("w_bits"), gamma too
("gamma_bits"), so nothing depends on decimal parsing. Run: python3 make_ternarize_fixture.py
"""
import json
import os

import numpy as np


def bf16_round(x):
    """Round float32 values to the nearest bfloat16 (ties to even), returned as float32."""
    b = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16 << 16
    return b.astype(np.uint32).view(np.float32)


def case(name, w, ranks):
    w = np.asarray(w, dtype=np.float32)
    out, inn = w.shape
    w64 = w.astype(np.float64)
    gamma = np.float32(max(np.float32(np.abs(w64).mean()), np.float32(1e-5)))
    q = np.round(w / gamma)                       # float32 division, round half to even
    codes = np.clip(q, -1, 1).astype(np.int8)
    norm = np.linalg.norm(w64)
    resid = w64 - np.float64(gamma) * codes.astype(np.float64)
    rel = float(np.linalg.norm(resid) / norm) if norm > 0 else 0.0
    s = np.linalg.svd(resid, compute_uv=False)
    full = min(out, inn)
    corrections = []
    for r in ranks:
        used = min(r, full)
        tail = float(np.sqrt(np.sum(s[used:] ** 2)))
        corrections.append({"rank": r, "used_rank": used, "clamped": r > full,
                            "corrected_error": tail / norm if norm > 0 else 0.0})
    return {
        "name": name, "out": out, "in": inn,
        "w_bits": w.view(np.uint32).reshape(-1).tolist(),
        "gamma_bits": int(np.array([gamma], dtype=np.float32).view(np.uint32)[0]),
        "gamma": float(gamma),
        "codes": codes.reshape(-1).tolist(),
        "relative_error": rel,
        "singular_values": s.tolist(),
        "corrections": corrections,
    }


def main():
    rng = np.random.default_rng(20261201)
    cases = []
    g = lambda o, i, sd=1.0: (rng.standard_normal((o, i)) * sd).astype(np.float32)
    cases.append(case("gauss_24x40", g(24, 40, 0.02), [0, 1, 4, 24, 30]))
    cases.append(case("gauss_40x24", g(40, 24, 0.5), [0, 1, 4, 24, 100]))
    cases.append(case("gauss_7x5", g(7, 5), [0, 1, 4, 5, 6]))
    cases.append(case("row_1x9", g(1, 9), [0, 1, 4]))
    cases.append(case("bf16_16x24", bf16_round(g(16, 24, 0.03)), [0, 1, 4, 16, 17]))
    cases.append(case("f16_24x16", g(24, 16, 0.03).astype(np.float16).astype(np.float32), [0, 1, 4, 16, 40]))
    # Heavy tails: a few outliers make gamma small relative to the largest weights.
    heavy = g(12, 20, 0.01)
    heavy[3, 7] = 0.9
    heavy[10, 1] = -0.7
    cases.append(case("outliers_12x20", heavy, [0, 1, 4, 12]))
    # Exact ties: gamma = 0.25 exactly and W/gamma in {+-0.5, +-1.5, +-1, 0, 2, 2.5}.
    c = np.array([[0.5, -0.5, 1.5, -1.5],
                  [0.5, -0.5, 1.5, -1.5],
                  [1.0, -1.0, 0.0, 2.0],
                  [2.5, -0.5, 0.5, -0.5]], dtype=np.float32)
    assert abs(np.abs(c).mean() - 1.0) < 1e-12
    ties = case("ties_4x4", c * np.float32(0.25), [0, 1, 4])
    assert ties["gamma"] == 0.25
    cases.append(ties)
    # Mean |W| below 1e-5: gamma is floored at 1e-5.
    tiny = (rng.uniform(-8e-6, 8e-6, (3, 6))).astype(np.float32)
    tiny_case = case("tiny_3x6", tiny, [0, 1, 3])
    assert tiny_case["gamma_bits"] == int(np.array([1e-5], dtype=np.float32).view(np.uint32)[0])
    cases.append(tiny_case)
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "ternarize", "fixture.json")
    with open(path, "w") as f:
        json.dump({"generator": "make_ternarize_fixture.py", "numpy": np.__version__, "cases": cases}, f)
        f.write("\n")
    print(f"wrote {path}: {len(cases)} cases")


if __name__ == "__main__":
    main()
