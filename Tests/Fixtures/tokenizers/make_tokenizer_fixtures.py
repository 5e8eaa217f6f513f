#!/usr/bin/env python3
"""Writes the Tokenizers test fixtures with the Hugging Face `tokenizers` library.

Run once (it needs network access to PyPI for the virtualenv); the outputs are committed so the
Swift tests never need Python:

    python3 Tests/Fixtures/tokenizers/make_tokenizer_fixtures.py

It re-executes itself inside /tmp/tk-venv (created with `tokenizers` and `jinja2` if missing) and
writes, next to this script:

- llama3-tiny.json: byte-level BPE trained on local text, Llama 3 layout (Split with the Llama 3
  regex + ByteLevel without regex, ignore_merges, Llama 3 special tokens after the vocabulary,
  TemplateProcessing adding <|begin_of_text|>), merges saved as pairs.
- gpt2-tiny.json: GPT-2 layout (ByteLevel pre-tokenizer with its own regex, merges as "a b"
  strings, no ignore_merges, ByteLevel post-processor), plus non-special added tokens with
  single_word / lstrip / rstrip.
- expected.json also holds "splits": 600 random strings over a wide alphabet (all Unicode
  spaces, letter and number categories, marks, ſ, emoji) cut by HF's Split with the Llama 3 and
  GPT-2 expressions, to check the hand-written scanners against Oniguruma itself.
- variants.json: patches of llama3-tiny.json (ByteLevel add_prefix_space with and without its
  regex, every Split behavior and invert on a literal pattern, a regex without a hand-written
  scanner, ignore_merges off, byte_fallback without ByteLevel and without decoder) with the same
  four outputs for every test string.
- expected.json: for every test string and both files, the ids with and without special tokens
  and both decodes; decode-only cases on arbitrary id runs (broken UTF-8); chat renderings made
  by jinja2 from the template texts.

With `--bench DIR` it also writes DIR/bench.txt (a few MB of mixed text), DIR/llama3-128k.json
(a synthetic 128k-vocabulary tokenizer for load timing) and prints HF timings.
"""
import glob
import json
import os
import random
import sys
import time

VENV = "/tmp/tk-venv"
HERE = os.path.dirname(os.path.abspath(__file__))

if sys.prefix != VENV:
    if not os.path.exists(os.path.join(VENV, "bin", "python")):
        import subprocess
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([os.path.join(VENV, "bin", "pip"), "install", "-q", "tokenizers", "jinja2"])
    os.execv(os.path.join(VENV, "bin", "python"), [os.path.join(VENV, "bin", "python")] + sys.argv)

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                   "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
                   "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]

# The chat templates, verbatim: Llama 3 Instruct's and BitNet b1.58 2B4T's tokenizer_config.json.
LLAMA3_TEMPLATE = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
                   "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
                   "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
                   "{{ content }}{% endfor %}{% if add_generation_prompt %}"
                   "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
BITNET_TEMPLATE = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
                   "message['role'] | capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}"
                   "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}")
# The same format with Llama 3's first-message BOS clause, for copies of the 2B4T config that carry it.
BITNET_BOS_TEMPLATE = BITNET_TEMPLATE.replace(
    "{{ content }}", "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}")

STRINGS = [
    "", " ", "  ", "\t", "\n", "\r\n", "Hello", "Hello world", "hello world", " hello world",
    "Hello, world! How are you today?", "The quick brown fox jumps over the lazy dog.",
    "I'm here, you're there, it's fine, we've done it, I'll go, he'd say, don't.",
    "I'M HERE, YOU'RE THERE, IT'S FINE, WE'VE DONE IT, I'LL GO, HE'D SAY, DON'T.",
    "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'VE 'M 'LL 'D 'st 'xyz ' s",
    "rock'n'roll o'clock ''s", "café naïve résumé façade über Straße",
    "Ελληνικά γράμματα και λέξεις", "Привет, мир! Как дела?", "中文字符测试，你好世界。",
    "日本語のテキストです。カタカナ、ひらがな。", "한국어 텍스트", "مرحبا بالعالم", "שלום עולם",
    "emoji 😀😃😄 👍🏽 🇫🇷", "family 👨‍👩‍👧‍👦 and 🏳️‍🌈 zwj", "❤️ ✨ ☃ ★",
    "1", "12", "123", "1234", "12345678901234567890", "3.14159 2,718 1e-10 -42 +7",
    "٣٤٥ ١٢ ⅣⅫ ½ ²³", "year 2024, 10,000 people, 1st 2nd 3rd",
    "a  b   c    d", "trailing space ", "trailing spaces   ", "   leading spaces",
    "tab\tseparated\tvalues", "\t\tdouble tab", "line1\nline2\nline3", "windows\r\nline\r\nendings",
    "mixed \n\n  \n  spaces", "\n\n\n", " \n ", "word\n", "a\n\nb", "x \t\ny", "  \r\n  z",
    "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; i++) { sum += a[i]; }",
    "if x == 1 and y != 2: print(\"ok\")  # comment", "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "<html><body class=\"main\">Text</body></html>", "SELECT * FROM users WHERE id = 42;",
    "https://example.com/path?q=1&r=two#frag", "user@example.com", "C:\\Windows\\System32",
    "!!!???...,,,;;;:::", "---===+++***", "(parenthesized) [bracketed] {braced}",
    "$100 €50 £30 ¥1000 ₹500", "50% off — “quoted” ‘text’ … ok", "a.b.c", "...leading dots",
    "<|begin_of_text|>Hello", "Hello<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "text <|end_of_text|> more", "<|begin_of_text|><|begin_of_text|>", "<|eot_id |> not special",
    "<|reserved_special_token_0|>x<|reserved_special_token_1|>", "<|endoftext|>gpt2 end",
    "say hello world please", "hello worlds", "xhello world", "a <tag> b", "a<tag>b", "  <tag>  z",
    "control \x00 \x01 \x07 \x1b[0m \x7f chars", "\x1c\x1d\x1e\x1f separators", "\u200b zero\u200bwidth",
    "replacement \ufffd char", "\u00a0nbsp\u00a0here", "ideographic\u3000space", "\u2028line sep\u2029",
    "\u0085next line", "\x0b\x0c vertical", "combining e\u0301 a\u0308", "ſ long s 'ſ",
    "ǅ titlecase ǈ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math 𝟙𝟚𝟛", "🤖🤖🤖🤖🤖", "a😀b", "😀", "x" * 50, "ab" * 40,
    " " * 20, "\n" * 5 + "x", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "Mixed123Numbers456and789Letters", "snake_case_variable camelCaseVariable PascalCase",
    "ALLCAPS SHOUTING TEXT", "The year was 1999; the price was $9.99.", "e.g. i.e. etc. vs.",
    "Hello\u00a0world", "first\u2003em\u2002en space", " 123", "  456", "\t789", "x'", "'", "''",
    "don't", "DON'T", "it’s curly", "Tab\t\tTab", "end.\n", "a\r\rb", "\r", "question?\n\nAnswer:",
]

CONVERSATIONS = [
    ([{"role": "user", "content": "Hello!"}], True),
    ([{"role": "user", "content": "Hello!"}], False),
    ([{"role": "system", "content": "You are a helpful AI assistant."},
      {"role": "user", "content": "How are you?"}], True),
    ([{"role": "system", "content": "  Be brief.\n"}, {"role": "user", "content": "\tWhat is 2+2? "},
      {"role": "assistant", "content": "4\n\n"}, {"role": "user", "content": "And 3+3?"}], True),
    ([{"role": "user", "content": "héllo 😀\n\nsecond paragraph"}, {"role": "assistant", "content": "Hi."}], False),
    ([], True),
]


def corpus_lines(limit_bytes):
    out, total = [], 0
    files = sorted(glob.glob("/usr/lib/python3*/**/*.py", recursive=True))
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        out.append(text)
        total += len(text)
        if total >= limit_bytes:
            break
    return out


def train(pre_tokenizer, vocab_size, ignore_merges, corpus):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    return tok


def llama3_tokenizer(corpus, vocab_size=1500):
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok = train(pre, vocab_size, True, corpus)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in LLAMA3_SPECIALS])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A:0 <|begin_of_text|>:1 $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    return tok


def gpt2_tokenizer(corpus):
    tok = train(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), 1200, False, corpus)
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    tok.add_tokens([AddedToken("hello world", single_word=True), AddedToken("<tag>", lstrip=True, rstrip=True)])
    return tok


def with_string_merges(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    data["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in data["model"]["merges"]]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)


def cases(tok, strings):
    out = []
    for s in strings:
        ids = tok.encode(s).ids
        out.append({
            "text": s, "ids": ids, "ids_no_special": tok.encode(s, add_special_tokens=False).ids,
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
        })
    return out


def decode_cases(tok, rng):
    out = []
    n = tok.get_vocab_size(with_added_tokens=True)
    for _ in range(40):
        ids = [rng.randrange(n) for _ in range(rng.randrange(1, 12))]
        out.append({"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                    "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)})
    return out


def chats():
    import jinja2
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)  # as transformers renders chat templates
    out = []
    for name, source in (("llama3", LLAMA3_TEMPLATE), ("bitnet-b1.58-2b4t", BITNET_TEMPLATE),
                         ("bitnet-b1.58-2b4t-bos", BITNET_BOS_TEMPLATE)):
        tmpl = env.from_string(source)
        for messages, gen in CONVERSATIONS:
            out.append({"template": name, "messages": messages, "add_generation_prompt": gen,
                        "rendered": tmpl.render(messages=messages, add_generation_prompt=gen,
                                                bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")})
    return out


def variants(base_json):
    """Small edits of llama3-tiny.json covering the other pre-tokenizer options, byte fallback and
    the absent decoder; stored as patches so the fixture stays small."""
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
    llama_split = {"type": "Split", "pattern": {"Regex": LLAMA3_REGEX}, "behavior": "Isolated", "invert": False}

    def seq(*steps):
        return {"type": "Sequence", "pretokenizers": list(steps)}

    def space_split(behavior, invert=False):
        return {"type": "Split", "pattern": {"String": " "}, "behavior": behavior, "invert": invert}

    # Byte-fallback tokens take ids 1500..1755; the added tokens move up by 256 to stay after the
    # model vocabulary (as in real files; HF renumbers added tokens that would sit inside it).
    base = json.loads(base_json)
    first_added = min(t["id"] for t in base["added_tokens"])
    fallback_vocab = {f"<0x{b:02X}>": first_added + b for b in range(256)}
    moved_added = [dict(t, id=t["id"] + 256) for t in base["added_tokens"]]
    moved_post = json.loads(json.dumps(base["post_processor"]))
    for proc in moved_post["processors"]:
        for spec in proc.get("special_tokens", {}).values():
            spec["ids"] = [i + 256 for i in spec["ids"]]
    patches = {
        "bytelevel-prefix-regex": {"pre_tokenizer": dict(bl, add_prefix_space=True, use_regex=True)},
        "bytelevel-prefix-after-split": {"pre_tokenizer": seq(llama_split, dict(bl, add_prefix_space=True))},
        "split-removed": {"pre_tokenizer": seq(space_split("Removed"), bl)},
        "split-merged-previous": {"pre_tokenizer": seq(space_split("MergedWithPrevious"), bl)},
        "split-merged-next": {"pre_tokenizer": seq(space_split("MergedWithNext"), bl)},
        "split-contiguous": {"pre_tokenizer": seq(space_split("Contiguous"), bl)},
        "split-isolated-invert": {"pre_tokenizer": seq(space_split("Isolated", invert=True), bl)},
        "split-other-regex": {"pre_tokenizer": seq({"type": "Split", "pattern": {"Regex": r"\p{N}|[^\p{N}\s]+|\s+"},
                                                   "behavior": "Isolated", "invert": False}, bl)},
        "no-merge-ignore": {"model": {"ignore_merges": False}},
        "byte-fallback-no-decoder": {"pre_tokenizer": llama_split, "decoder": None, "added_tokens": moved_added,
                                     "post_processor": moved_post,
                                     "model": {"byte_fallback": True, "add_vocab": fallback_vocab}},
    }
    out = {}
    for name, patch in patches.items():
        data = json.loads(base_json)
        for key, value in patch.items():
            if key == "model":
                for k, v in value.items():
                    if k == "add_vocab":
                        data["model"]["vocab"].update(v)
                    else:
                        data["model"][k] = v
            else:
                data[key] = value
        tok = Tokenizer.from_str(json.dumps(data))
        rows = []
        for s in STRINGS:
            ids = tok.encode(s).ids
            rows.append([ids, tok.encode(s, add_special_tokens=False).ids, tok.decode(ids, skip_special_tokens=False),
                         tok.decode(ids, skip_special_tokens=True)])
        out[name] = {"patch": patch, "cases": rows}
    return {"base": "llama3-tiny.json", "strings": STRINGS, "variants": out}


GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


def splits():
    """Random strings over a wide alphabet and how HF's (Oniguruma) Split cuts them with the two
    known expressions: checks the hand-written scanners against the real regex engine."""
    alphabet = (list("aZsStTrReEvVmMlLdD") + ["\u017f", "\u212a", "\u0130", "é", "ß", "Ω", "ж", "中", "ア", "한", "ب",
                "\u01c5", "\u02b0", "1", "0", "٣", "۴", "\u0966", "²", "½", "Ⅻ", "\U0001d7d9", " ", " ", " ", "\t", "\n",
                "\r", "\x0b", "\x0c", "\x85", "\xa0", "\u1680", "\u2000", "\u2009", "\u200a", "\u2028", "\u2029",
                "\u202f", "\u205f", "\u3000", "\u180e", "\u200b", "\u200d", "\ufeff", "\x1c", "\x1f", "\x00", "\x7f",
                "'", "'", "'", "\u2019", ".", ",", "!", "-", "_", "(", "$", "€", "\u0301", "\u0308", "\u20dd",
                "😀", "👍", "\U0001f3fd", "\ufffd", "\ue000", "\U0001d518"])
    rng = random.Random(11)
    patterns = {"llama3": LLAMA3_REGEX, "gpt2": GPT2_REGEX}
    splitters = {k: pre_tokenizers.Split(Regex(v), behavior="isolated") for k, v in patterns.items()}
    out = []
    for _ in range(600):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 30)))
        out.append({"text": text, **{k: [piece for piece, _ in sp.pre_tokenize_str(text)] for k, sp in splitters.items()}})
    return out


def main():
    corpus = corpus_lines(3_000_000) + STRINGS * 3
    llama = llama3_tokenizer(corpus)
    gpt2 = gpt2_tokenizer(corpus)
    llama_path = os.path.join(HERE, "llama3-tiny.json")
    gpt2_path = os.path.join(HERE, "gpt2-tiny.json")
    llama.save(llama_path, pretty=True)
    gpt2.save(gpt2_path, pretty=True)
    with_string_merges(gpt2_path)
    gpt2 = Tokenizer.from_file(gpt2_path)
    rng = random.Random(7)
    expected = {
        "generator": "tokenizers " + __import__("tokenizers").__version__,
        "llama3-tiny.json": {"encode": cases(llama, STRINGS), "decode": decode_cases(llama, rng)},
        "gpt2-tiny.json": {"encode": cases(gpt2, STRINGS), "decode": decode_cases(gpt2, rng)},
        "chat": chats(),
        "splits": splits(),
        "templates": {"llama3": LLAMA3_TEMPLATE, "bitnet-b1.58-2b4t": BITNET_TEMPLATE,
                      "bitnet-b1.58-2b4t-bos": BITNET_BOS_TEMPLATE},
    }
    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
    with open(os.path.join(HERE, "variants.json"), "w", encoding="utf-8") as f:
        json.dump(variants(llama.to_str()), f, ensure_ascii=False, separators=(",", ":"))
    print("wrote", llama_path, gpt2_path, "and expected.json;", len(STRINGS), "strings")
    if "--bench" in sys.argv:
        bench(sys.argv[sys.argv.index("--bench") + 1], llama, corpus)


def synth_128k(base, path):
    """A 128k-vocabulary tokenizer.json with Llama 3's layout: 256 bytes plus random merged tokens."""
    data = json.loads(base.to_str())
    byte_chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(byte_chars)}
    tokens = list(byte_chars)
    merges = []
    rng = random.Random(1)
    while len(tokens) < 128000:
        a = tokens[int(rng.random() ** 3 * len(tokens))]
        b = tokens[int(rng.random() ** 3 * len(tokens))]
        if a + b in vocab or len(a + b) > 16:
            continue
        vocab[a + b] = len(tokens)
        tokens.append(a + b)
        merges.append([a, b])
    data["model"]["vocab"] = vocab
    data["model"]["merges"] = merges
    added = []
    for i in range(256):
        name = LLAMA3_SPECIALS[i] if i < len(LLAMA3_SPECIALS) else f"<|reserved_special_token_{i + 10}|>"
        added.append({"id": 128000 + i, "content": name, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True})
    data["added_tokens"] = added
    data["post_processor"]["processors"][1]["special_tokens"]["<|begin_of_text|>"]["ids"] = [128000]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=2)


def bench(directory, llama, corpus):
    os.makedirs(directory, exist_ok=True)
    rng = random.Random(3)
    parts, total = [], 0
    pool = STRINGS + "\n".join(corpus[:200]).split("\n")
    while total < 4_000_000:
        s = rng.choice(pool)
        if rng.random() < 0.3:
            s = s.upper() if rng.random() < 0.5 else s + " " + str(rng.randrange(100000))
        parts.append(s)
        total += len(s.encode()) + 1
    text = "\n".join(parts)
    with open(os.path.join(directory, "bench.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    nbytes = len(text.encode())
    lines = text.split("\n")
    for name, tok in (("llama3-tiny", llama),):
        tok.encode("warm up")
        t = time.perf_counter(); ids = tok.encode(text, add_special_tokens=False).ids; dt = time.perf_counter() - t
        print(f"HF {name} one string: {nbytes / dt / 1e6:.2f} MB/s ({len(ids)} ids, {dt:.3f} s)")
        t = time.perf_counter(); n = sum(len(tok.encode(line, add_special_tokens=False).ids) for line in lines)
        dt = time.perf_counter() - t
        print(f"HF {name} per line ({len(lines)} encode calls): {nbytes / dt / 1e6:.2f} MB/s ({n} ids, {dt:.3f} s)")
    path = os.path.join(directory, "llama3-128k.json")
    synth_128k(llama, path)
    t = time.perf_counter(); big = Tokenizer.from_file(path); dt = time.perf_counter() - t
    print(f"HF load {path} ({os.path.getsize(path) / 1e6:.1f} MB, vocab {big.get_vocab_size()}): {dt:.3f} s")
    with open(os.path.join(directory, "bench-expected.json"), "w") as f:
        json.dump({"ids_no_special_count": len(llama.encode(text, add_special_tokens=False).ids),
                   "big_ids": big.encode(text[:20000], add_special_tokens=False).ids}, f)


if __name__ == "__main__":
    main()
