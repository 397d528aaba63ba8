#!/usr/bin/env python3
"""Writes small random-weight XLM-RoBERTa / RoBERTa sentence-transformers directories of shapes
and poolings other than the shared tiny model's, with sentence-transformers' token ids and
embeddings for mixed Chinese/English texts, into crates/encoder/tests/fixtures/xlmr-*/.

The tokenizer is the shared tiny model's (Unigram, 6,001 pieces); it is not copied into the
fixtures: the test takes it from $EMBEDTUNE_SHARED. Run with EMBEDTUNE_SHARED set:

    EMBEDTUNE_SHARED=../shared python3 scripts/make_xlmr_fixtures.py
"""
import json
import os
import pathlib
import shutil
import tempfile

import torch
from safetensors.torch import load_file, save_file
from sentence_transformers import SentenceTransformer, models
from transformers import AutoTokenizer, RobertaConfig, RobertaModel, XLMRobertaConfig, XLMRobertaModel

SHARED = pathlib.Path(os.environ["EMBEDTUNE_SHARED"])
TOKENIZER = SHARED / "models" / "tiny-xlm-roberta-random"
OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/encoder/tests/fixtures"

TEXTS = [
    "什么是优惠供款上限？",
    "How do I roll over my super to an SMSF?",
    "SMSF 的 ESA 在哪里申请？",
    "雇主没有按时缴纳 superannuation guarantee 怎么办？",
    "Ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＮ　１２３ and emoji 🙂 with accents: café, naïve, Zürich",
    "x",
    "",
    # truncated at max_seq in the middle of CJK text
    "退休金账户的转移需要雇主和基金双方确认，" * 12,
]

VARIANTS = [
    # name, model class/config, pooling, include_prompt, normalize, max_seq, rename prefix
    dict(name="xlmr-cls-3heads", kind="xlm-roberta", hidden=24, heads=3, layers=2, inter=40,
         max_seq=64, pooling="cls", include_prompt=True, normalize=False, prefix=None, seed=11),
    dict(name="roberta-mean-prefixed", kind="roberta", hidden=16, heads=2, layers=3, inter=32,
         max_seq=32, pooling="mean", include_prompt=False, normalize=True, prefix="roberta.",
         seed=12),
]


def build(v):
    torch.manual_seed(v["seed"])
    cls, mcls = (XLMRobertaConfig, XLMRobertaModel) if v["kind"] == "xlm-roberta" else (
        RobertaConfig, RobertaModel)
    config = cls(vocab_size=6001, hidden_size=v["hidden"], num_hidden_layers=v["layers"],
                 num_attention_heads=v["heads"], intermediate_size=v["inter"],
                 max_position_embeddings=v["max_seq"] + 2, type_vocab_size=1, pad_token_id=1,
                 bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5)
    hf = mcls(config, add_pooling_layer=False).eval()
    tmp = pathlib.Path(tempfile.mkdtemp())
    hf.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(TOKENIZER).save_pretrained(tmp)
    transformer = models.Transformer(str(tmp), max_seq_length=v["max_seq"])
    pooling = models.Pooling(v["hidden"], pooling_mode=v["pooling"],
                             include_prompt=v["include_prompt"])
    mods = [transformer, pooling] + ([models.Normalize()] if v["normalize"] else [])
    st = SentenceTransformer(modules=mods, prompts={"query": "query: ", "document": "passage: "})
    st.eval()
    out = OUT / v["name"]
    if out.exists():
        shutil.rmtree(out)
    st.save(str(out))
    refs = []
    for prompt in ["query: ", "passage: "]:
        for text in TEXTS:
            ids = st.tokenize([prompt + text])["input_ids"][0].tolist()
            emb = st.encode([text], prompt=prompt, convert_to_numpy=True)[0]
            refs.append({"text": text, "prompt": prompt, "input_ids": ids,
                         "embedding": [round(float(x), 7) for x in emb]})
    # the tokenizer itself (tokenizer.json, 380 kB) comes from the shared model at test time;
    # tokenizer_config.json stays: it carries max_seq_length (`model_max_length`)
    for f in ["tokenizer.json", "sentencepiece.bpe.model"]:
        (out / f).unlink(missing_ok=True)
    for f in out.glob("README.md"):
        f.unlink()
    if v["prefix"]:
        weights = load_file(out / "model.safetensors")
        save_file({v["prefix"] + k: t.contiguous() for k, t in weights.items()},
                  out / "model.safetensors", metadata={"format": "pt"})
    with open(out / "reference.jsonl", "w", encoding="utf-8") as f:
        for r in refs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(out, sorted(p.name for p in out.iterdir()))


for v in VARIANTS:
    build(v)
