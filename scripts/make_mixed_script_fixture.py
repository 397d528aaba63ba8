#!/usr/bin/env python3
"""Writes crates/encoder/tests/fixtures/mixed_script_truncation.json: sentence-transformers'
token ids and embeddings for long mixed Chinese / English / emoji / full-width / combining-mark
texts that cross max_seq, with the shared tiny XLM-RoBERTa model
($EMBEDTUNE_SHARED/models/tiny-xlm-roberta-random, Unigram tokenizer, mean pooling, Normalize).

Each case is (text, prompt, max_seq) with max_seq 128 (the model's) and two shorter lengths set
through `model.max_seq_length` (as the Rust test sets them through `set_max_seq_length`):

- `input_ids`: `model.tokenize([prompt + text])`, truncated at max_seq, special tokens included;
- `full_length`: the token count of `prompt + text` untruncated, special tokens included;
- `cut_mid_cjk`: the cut falls between two Han characters of one run (no space between);
- `prefix_chars`: when the text is cut, the length in code points of the part of `text` up to
  the end of the last kept token, if `prompt + prefix` tokenises to exactly `input_ids` (the
  embedding of the truncated text then equals the embedding of its explicit prefix, which is
  checked here); otherwise null;
- `embedding`: `model.encode([text], prompt=prompt)`, rounded to 6 decimals.

The texts are stored once, under `texts`; a case names its text.

Run from the repository root with sentence-transformers 6.2 / transformers 5.24 / torch 2.15
(CPU):

    EMBEDTUNE_SHARED=/work/shared python3 scripts/make_mixed_script_fixture.py
"""
import json
import os
import pathlib

import numpy as np
import sentence_transformers
import transformers
from sentence_transformers import SentenceTransformer

SHARED = pathlib.Path(os.environ["EMBEDTUNE_SHARED"])
MODEL = SHARED / "models" / "tiny-xlm-roberta-random"
OUT = (pathlib.Path(__file__).resolve().parent.parent
       / "crates/encoder/tests/fixtures/mixed_script_truncation.json")

TEXTS = {
    # Chinese with English terms; every cut lands inside a run of Han characters.
    "zh_en": "请问 SMSF 的 ESA 在哪里申请？我的雇主说 superannuation guarantee 已经缴纳，"
             "但是基金账户里没有看到这笔供款。" * 3,
    # ZWJ family, a flag (two regional indicators), a skin-tone modifier, a variation selector.
    "emoji": "👨‍👩‍👧 家庭养老金账户 🇦🇺 澳大利亚税务局 👍🏽 已确认 ❤️ 退休金转移需要雇主和基金双方确认，" * 5,
    # Full-width Latin letters, digits, ideographic space and punctuation.
    "fullwidth": "ＳＭＳＦ　１２３，。？养老金基金的年度审计报告需要在十月三十一日之前提交给税务局，" * 5,
    # Decomposed accents (base letter + combining mark) next to precomposed ones.
    "combining": "café naïve Zürich e\u0301 n\u0303 退休金账户的转移需要雇主和基金双方确认，"
                 "资金到账时间大约三个工作日。" * 4,
    # Short: the question users ask, and every awkward character class at once.
    "question": "SMSF 的 ESA 在哪里申请？",
    "mixed_short": "👨‍👩‍👧 🇦🇺 👍🏽 ❤️ e\u0301 ＳＭＳＦ　１２３，。？ 养老金 super",
}
PROMPTS = ["", "query: "]
MAX_SEQS = [128, 16, 37]


def han(c):
    return 0x4E00 <= ord(c) <= 0x9FFF


def main():
    model = SentenceTransformer(str(MODEL), device="cpu")
    model.eval()
    tok = model.tokenizer
    cases = []
    for name, text in TEXTS.items():
        for prompt in PROMPTS:
            joined = prompt + text
            full = tok(joined, add_special_tokens=False, return_offsets_mapping=True)
            offsets = full["offset_mapping"]
            for max_seq in MAX_SEQS:
                model.max_seq_length = max_seq
                ids = model.tokenize([joined])["input_ids"][0].tolist()
                kept = len(ids) - 2
                cut = len(full["input_ids"]) > kept
                cut_mid_cjk, prefix = False, None
                if cut:
                    end, start = offsets[kept - 1][1], offsets[kept][0]
                    cut_mid_cjk = end == start and han(joined[end - 1]) and han(joined[start])
                    if end > len(prompt):
                        candidate = joined[len(prompt):end]
                        again = model.tokenize([prompt + candidate])["input_ids"][0].tolist()
                        if again == ids:
                            prefix = candidate
                emb = model.encode([text], prompt=prompt, convert_to_numpy=True)[0]
                if prefix is not None:
                    emb_prefix = model.encode([prefix], prompt=prompt, convert_to_numpy=True)[0]
                    assert np.allclose(emb, emb_prefix, atol=1e-6), (name, prompt, max_seq)
                cases.append({
                    "text": name,
                    "prompt": prompt,
                    "max_seq": max_seq,
                    "input_ids": ids,
                    "full_length": len(full["input_ids"]) + 2,
                    "cut_mid_cjk": bool(cut_mid_cjk),
                    "prefix_chars": None if prefix is None else len(prefix),
                    "embedding": [round(float(x), 6) for x in emb],
                })
    assert any(c["cut_mid_cjk"] and c["max_seq"] == 128 for c in cases)
    assert any(c["prefix_chars"] is not None and c["cut_mid_cjk"] for c in cases)
    doc = {
        "model": "tiny-xlm-roberta-random",
        "made_by": "scripts/make_mixed_script_fixture.py",
        "versions": {
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
        },
        "texts": TEXTS,
        "cases": cases,
    }
    # One case per line, so that a regenerated fixture diffs line by line.
    head = json.dumps({k: v for k, v in doc.items() if k != "cases"}, ensure_ascii=False,
                      indent=1)
    lines = ",\n".join(" " + json.dumps(c, ensure_ascii=False) for c in cases)
    OUT.write_text(head[:-2] + ',\n "cases": [\n' + lines + "\n ]\n}\n", encoding="utf-8")
    n_cut = sum(c["full_length"] > c["max_seq"] for c in cases)
    n_mid = sum(c["cut_mid_cjk"] for c in cases)
    n_prefix = sum(c["prefix_chars"] is not None for c in cases)
    print(f"{OUT}: {len(cases)} cases, {n_cut} truncated, {n_mid} cut mid-CJK, "
          f"{n_prefix} with an equivalent prefix")


if __name__ == "__main__":
    main()
