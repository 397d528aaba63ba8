#!/usr/bin/env python3
"""Writes a random-weight BERT model in the sentence-transformers layout, for benchmarks at sizes
the shared assets do not have (BERT-base: bge-base / e5-base; BERT-large: E5-large-v2).

    python3 scripts/make_random_st_model.py --shape base  --out /tmp/bert-base-random
    python3 scripts/make_random_st_model.py --shape large --out /tmp/bert-large-random

The tokenizer (and its vocabulary of 30,522 WordPiece tokens) is all-MiniLM-L6-v2's, from the
shared assets; the weights are drawn from the seeded default initialisation of transformers'
BertModel. Pooling is mean with L2 normalisation, max_seq_length 512, as E5-v2 / BGE ship.
Both this project and sentence-transformers load the same directory.
"""
import argparse, os

import torch
from sentence_transformers import SentenceTransformer, models
from transformers import AutoTokenizer, BertConfig, BertModel

SHAPES = {
    # layers, hidden, heads, intermediate
    "tiny": (2, 64, 4, 256),
    "base": (12, 768, 12, 3072),
    "large": (24, 1024, 16, 4096),
}

ap = argparse.ArgumentParser()
ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--tokenizer", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "models", "all-MiniLM-L6-v2"))
ap.add_argument("--max-seq", type=int, default=512)
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()

layers, hidden, heads, inter = SHAPES[a.shape]
torch.manual_seed(a.seed)
tok = AutoTokenizer.from_pretrained(a.tokenizer)
cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                 intermediate_size=inter, max_position_embeddings=512)
bert_dir = a.out + ".hf"
BertModel(cfg).save_pretrained(bert_dir)
tok.save_pretrained(bert_dir)
word = models.Transformer(bert_dir, max_seq_length=a.max_seq)
pool = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="mean")
SentenceTransformer(modules=[word, pool, models.Normalize()]).save(a.out)
print(f"wrote {a.out}: {a.shape} ({layers} layers, hidden {hidden}, {heads} heads)")
