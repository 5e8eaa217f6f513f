#!/usr/bin/env python3
"""HF `tokenizers` side of the benchmark in main.swift: same text, same files, one thread.

    RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false /tmp/tk-venv/bin/python \
        Tests/Fixtures/tokenizers/bench/hf_bench.py /tmp/tk-bench Tests/Fixtures/tokenizers
"""
import os
import sys
import time

from tokenizers import Tokenizer

bench_dir, fixture_dir = sys.argv[1], sys.argv[2]
text = open(os.path.join(bench_dir, "bench.txt"), encoding="utf-8", newline="").read()  # keep \r as written
mb = len(text.encode()) / 1e6


def best(reps, fn):
    t_best, result = float("inf"), None
    for _ in range(reps):
        t = time.perf_counter()
        result = fn()
        t_best = min(t_best, time.perf_counter() - t)
    return t_best, result


tiny = os.path.join(fixture_dir, "llama3-tiny.json")
big = os.path.join(bench_dir, "llama3-128k.json")
t, _ = best(3, lambda: Tokenizer.from_file(big))
print(f"HF load llama3-128k.json: {t:.3f} s")
t, ids = best(3, lambda: Tokenizer.from_file(tiny).encode(text, add_special_tokens=False).ids)
print(f"HF encode {mb:.2f} MB as one string, fresh tokenizer: {t:.3f} s = {mb / t:.2f} MB/s ({len(ids)} ids)")
tok = Tokenizer.from_file(tiny)
tok.encode(text, add_special_tokens=False)
t, _ = best(3, lambda: tok.encode(text, add_special_tokens=False))
print(f"HF encode as one string, warm cache: {t:.3f} s = {mb / t:.2f} MB/s")
lines = text.split("\n")


def per_line():
    fresh = Tokenizer.from_file(tiny)
    return sum(len(fresh.encode(line, add_special_tokens=False).ids) for line in lines)


t, n = best(3, per_line)
print(f"HF encode per line ({len(lines)} calls), fresh tokenizer: {t:.3f} s = {mb / t:.2f} MB/s ({n} ids)")
word = "abcdefghij" * 100_000
t, ids = best(1, lambda: tok.encode(word, add_special_tokens=False).ids)
print(f"HF encode one 1 MB word: {t:.3f} s ({len(ids)} ids)")
