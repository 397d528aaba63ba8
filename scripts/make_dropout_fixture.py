"""Writes crates/encoder/tests/fixtures/minilm_dropout_noise.json: how far dropout moves
all-MiniLM-L6-v2's sentence embeddings in sentence-transformers' training mode (hidden and
attention-probability dropout 0.1, as the model's config.json says).

For 8 SciFact train texts (4 queries, 4 passages; max_seq_length 64) it draws DRAWS training-mode
forward passes (torch seeds 5000…) and stores, per text, the mean and the standard deviation over
the draws of the squared distance between the training-mode embedding and the inference one
(`‖e_train − e_eval‖²`), and the inference embeddings. Dropout masks cannot be matched draw for
draw across frameworks, so the Rust test (crates/encoder/tests/parity.rs,
`dropout_noise_matches_sentence_transformers`) compares these statistics: each text's mean
squared distance must agree within a few standard errors.

usage: python3 scripts/make_dropout_fixture.py MODEL_DIR SCIFACT_DIR [OUT]
"""
import json
import sys
from pathlib import Path

import sentence_transformers
import torch
import transformers
from sentence_transformers import SentenceTransformer

DRAWS = 400
MAX_SEQ_LENGTH = 64


def main():
    model_dir, scifact = sys.argv[1], Path(sys.argv[2])
    out = sys.argv[3] if len(sys.argv) > 3 else "crates/encoder/tests/fixtures/minilm_dropout_noise.json"
    queries = {}
    for line in open(scifact / "queries.jsonl"):
        q = json.loads(line)
        queries[q["_id"]] = q["text"]
    corpus = {}
    for line in open(scifact / "corpus.jsonl"):
        d = json.loads(line)
        corpus[d["_id"]] = (d.get("title", "") + " " + d["text"]).strip()
    pairs = []
    for i, line in enumerate(open(scifact / "qrels" / "train.tsv")):
        if i > 0:
            qid, did, _ = line.rstrip("\n").split("\t")
            pairs.append((qid, did))
    texts = [queries[q] for q, _ in pairs[:4]] + [corpus[d] for _, d in pairs[:4]]

    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = MAX_SEQ_LENGTH
    features = model.tokenize(texts)
    tokens = features["attention_mask"].sum(1).tolist()
    with torch.no_grad():
        model.eval()
        e0 = model(dict(features))["sentence_embedding"]
        model.train()
        d2 = []
        for k in range(DRAWS):
            torch.manual_seed(5000 + k)
            e = model(dict(features))["sentence_embedding"]
            d2.append(((e - e0) ** 2).sum(1))
    d2 = torch.stack(d2).double()
    mean, std = d2.mean(0), d2.std(0)
    for t, m, s in zip(tokens, mean.tolist(), std.tolist()):
        print(f"{t:3} tokens: mean squared distance {m:.5f} ± {s / DRAWS ** 0.5:.5f} (sd {s:.5f})")
    fixture = {
        "what": "training-mode (dropout) embedding noise of all-MiniLM-L6-v2 in sentence-transformers",
        "made_by": "scripts/make_dropout_fixture.py",
        "versions": {"sentence_transformers": sentence_transformers.__version__,
                     "transformers": transformers.__version__, "torch": torch.__version__},
        "max_seq_length": MAX_SEQ_LENGTH,
        "draws": DRAWS,
        "texts": texts,
        "tokens": tokens,
        "mean_sq_dist": mean.tolist(),
        "sd_sq_dist": std.tolist(),
        "eval_embeddings": e0.tolist(),
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as fh:
        json.dump(fixture, fh)
        fh.write("\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
