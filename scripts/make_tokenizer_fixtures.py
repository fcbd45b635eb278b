#!/usr/bin/env python3
"""Write the tokenizer reference fixtures tests/fixtures/tokenizer/{smollm2,gemma3}.json.

Each model's tokenizer is built by Hugging Face transformers straight from the GGUF file
(AutoTokenizer.from_pretrained(models_dir, gguf_file=NAME)) and encodes TEXTS below with
add_special_tokens False ("ids_plain") and True ("ids_special").

One correction is applied (see docs/tokenizer.md): transformers builds the SmolLM2
("pre" = "smollm") tokenizer with a plain ByteLevel pre-tokenizer and drops the digit
splitting that SmolLM2's own tokenizer.json has (Sequence[Digits(individual_digits=true),
ByteLevel(use_regex=true)]). The script restores that sequence and prints the cases whose
ids the correction changed.

    python3 scripts/make_tokenizer_fixtures.py [--models-dir models]
"""
import argparse
import json
import os

TEXTS = [
    "",
    "Hello world",
    "Hello, world! How are you today?",
    " leading space",
    "  two leading spaces",
    "trailing space ",
    "trailing spaces   ",
    "multiple   internal    spaces",
    "a" + " " * 40 + "b",
    " " * 33,
    "tabs\tand\t\ttabs",
    "\t\t\tindented",
    "new\nline",
    "paragraphs\n\nand\n\n\n\nmore",
    "windows\r\nline\r\nendings",
    "mixed \t \n whitespace \n\n  \t end",
    "\n",
    " ",
    "0",
    "42",
    "12345678901234567890",
    "3.14159 and 2,718,281",
    "Price: $1,234.56 (USD) or 99%",
    "phone 555-0123, zip 90210",
    "a1b2c3 x 10 y 100 z 1000",
    "  123  456",
    "!!!???...,,,;;;:::",
    "(parentheses) [brackets] {braces} <angles>",
    "email@example.com and https://example.org/path?q=1&r=2#frag",
    "I'm sure they'll say it's fine, don't you think? We've seen it'd be OK.",
    "I'M SURE THEY'LL SAY IT'S FINE, DON'T YOU? WE'VE",
    "'s 't 're 've 'm 'll 'd 'x",
    "rock'n'roll o'clock",
    "Café naïve résumé façade Ångström",
    "e\u0301 combining acute, n\u0303",
    "Zürich Straße Ærøskøbing",
    "日本語のテキストとカタカナ",
    "你好，世界！这是一个测试。",
    "한국어 텍스트입니다",
    "Русский текст, и ещё немного.",
    "Ελληνικά γράμματα",
    "مرحبا بالعالم، هذا اختبار",
    "שלום עולם",
    "हिन्दी पाठ",
    "ไทยภาษา",
    "Emoji: 😀 🤗 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️",
    "🤗🤗🤗",
    "math: ∑ x² ≤ ∞, α+β=γ, ½ ¾ ⅞ Ⅻ",
    "def foo(x):\n    return x * 2  # comment\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
    "<html><body><table><tr><td>cell</td></tr></table></body></html>",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "SELECT * FROM users WHERE id = 42;",
    "<|im_start|>user\nHi<|im_end|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
    "<bos>text<eos>",
    "<unused0> and <mask>",
    "<0x41> literal byte token text",
    "[multimodal] <start_of_image>",
    "odd: \u0000 \u0001 \u007f \u00a0 \u200b \u200d \ufeff \ufffd \ue000 \uffff \U0010fffd",
    "nbsp\u00a0between\u2003em\u3000ideographic",
    "\u2028line sep\u2029para sep\u0085nel",
    "ß ẞ ﬁ ﬀ ǅ",
    "repeated aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "CamelCaseIdentifiersLikeThisOne and snake_case_names",
    "The quick brown fox jumps over the lazy dog. " * 4,
]


def load(models_dir, name, fix_digits):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(models_dir, gguf_file=name)
    uncorrected = None
    if fix_digits:
        from tokenizers import pre_tokenizers

        uncorrected = AutoTokenizer.from_pretrained(models_dir, gguf_file=name)
        tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
            ]
        )
    return tok, uncorrected


def make(models_dir, name, out_path, fix_digits):
    tok, uncorrected = load(models_dir, name, fix_digits)
    cases = []
    for text in TEXTS:
        plain = tok.encode(text, add_special_tokens=False)
        special = tok.encode(text, add_special_tokens=True)
        cases.append({"text": text, "ids_plain": plain, "ids_special": special})
        if uncorrected is not None:
            other = uncorrected.encode(text, add_special_tokens=False)
            if other != plain:
                print(f"  {name}: digit splitting changes {text!r}: {other} -> {plain}")
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"gguf": name, "cases": cases}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out_path}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, ".."))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default=os.environ.get("EMBER_MODELS_DIR", os.path.join(root, "models")))
    parser.add_argument("--out-dir", default=os.path.join(root, "tests", "fixtures", "tokenizer"))
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    make(args.models_dir, "SmolLM2-135M-Instruct.Q4_1.gguf", os.path.join(args.out_dir, "smollm2.json"), True)
    make(args.models_dir, "gemma-3-270m-q4_k_m.gguf", os.path.join(args.out_dir, "gemma3.json"), False)


if __name__ == "__main__":
    main()
