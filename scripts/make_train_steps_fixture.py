"""Writes crates/train/tests/fixtures/minilm_mnrl_steps.json: three optimiser steps of
sentence-transformers' MultipleNegativesRankingLoss (scale 20, one hard-negative column) on
all-MiniLM-L6-v2, with the update transformers' Trainer makes (torch AdamW, betas 0.9/0.999,
eps 1e-8, weight decay 0; global-norm clipping at 1.0) and dropout off, so that the run is a
function of its inputs. Stored: the batches' texts, each step's learning rate, loss and gradient
norm (before clipping), and the embeddings of probe texts before and after the three steps.

The Rust test (crates/train/tests/train.rs, `three_steps_on_minilm_match_sentence_transformers`)
runs the same steps through `Trainer::step` and compares.

usage: python3 scripts/make_train_steps_fixture.py MODEL_DIR SCIFACT_DIR [OUT]
"""
import json
import sys
from pathlib import Path

import sentence_transformers
import torch
import transformers
from sentence_transformers import SentenceTransformer, losses

BATCH = 8
STEPS = 3
LRS = [1e-4, 1e-4, 5e-5]


def load_pairs(scifact: Path):
    queries = {}
    for line in open(scifact / "queries.jsonl"):
        q = json.loads(line)
        queries[q["_id"]] = q["text"]
    corpus = {}
    for line in open(scifact / "corpus.jsonl"):
        d = json.loads(line)
        corpus[d["_id"]] = (d.get("title", "") + " " + d["text"]).strip()
    pairs = []
    positives = {}
    for i, line in enumerate(open(scifact / "qrels" / "train.tsv")):
        if i == 0:
            continue
        qid, did, score = line.rstrip("\n").split("\t")
        if int(score) > 0:
            pairs.append((qid, did))
            positives.setdefault(qid, set()).add(did)
    return queries, corpus, pairs, positives


def main():
    model_dir, scifact = sys.argv[1], Path(sys.argv[2])
    out = sys.argv[3] if len(sys.argv) > 3 else "crates/train/tests/fixtures/minilm_mnrl_steps.json"
    queries, corpus, pairs, positives = load_pairs(scifact)

    # One pair per query and no passage twice in the first BATCH·STEPS rows, so every batch is a
    # plain MNRL batch; the negative of row i is the positive of row i + BATCH·STEPS (checked not
    # to be a positive of the query).
    rows, seen_q, seen_d = [], set(), set()
    for qid, did in pairs:
        if qid in seen_q or did in seen_d:
            continue
        seen_q.add(qid)
        seen_d.add(did)
        rows.append((qid, did))
    n = BATCH * STEPS
    batches = []
    for s in range(STEPS):
        batch = []
        for i in range(s * BATCH, (s + 1) * BATCH):
            qid, did = rows[i]
            neg = rows[i + n][1]
            assert neg not in positives[qid]
            batch.append([queries[qid], corpus[did], corpus[neg]])
        batches.append(batch)

    torch.manual_seed(0)
    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = 256
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    hf = model[0].auto_model
    hf.config.hidden_dropout_prob = 0.0
    hf.config.attention_probs_dropout_prob = 0.0
    for m in hf.modules():
        if hasattr(m, "dropout_prob"):
            m.dropout_prob = 0.0

    probes = [batches[0][0][0], batches[0][0][1], batches[2][7][0], batches[2][7][2]]

    def embed(texts):
        model.eval()
        with torch.no_grad():
            e = model.encode(texts, convert_to_tensor=True, batch_size=len(texts))
        model.train()
        return e

    before = embed(probes)
    model.train()
    # Dropout really is off: two training-mode passes agree exactly.
    f = model.tokenize(probes[:2])
    a = model(dict(f))["sentence_embedding"]
    b = model(dict(model.tokenize(probes[:2])))["sentence_embedding"]
    assert torch.equal(a, b), "dropout is still on"

    loss_fn = losses.MultipleNegativesRankingLoss(model, scale=20.0)
    opt = torch.optim.AdamW(model.parameters(), lr=LRS[0], betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.0)
    steps = []
    for s, batch in enumerate(batches):
        for g in opt.param_groups:
            g["lr"] = LRS[s]
        columns = [[row[c] for row in batch] for c in range(3)]
        features = [dict(model.tokenize(col)) for col in columns]
        opt.zero_grad()
        loss = loss_fn(features, None)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        steps.append({"lr": LRS[s], "rows": batch, "loss": loss.item(), "grad_norm": norm.item()})
        print(f"step {s}: loss {loss.item():.6f} grad norm {norm.item():.6f}")

    after = embed(probes)
    moved = (after - before).abs().max().item()
    print(f"probe embeddings moved by up to {moved:.3e}")
    fixture = {
        "what": "three MNRL steps on all-MiniLM-L6-v2, dropout off, torch AdamW (wd 0), clip 1.0",
        "made_by": "scripts/make_train_steps_fixture.py",
        "versions": {"sentence_transformers": sentence_transformers.__version__,
                     "transformers": transformers.__version__, "torch": torch.__version__},
        "max_seq_length": 256,
        "scale": 20.0,
        "steps": steps,
        "probes": probes,
        "before": before.tolist(),
        "after": after.tolist(),
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as fh:
        json.dump(fixture, fh)
        fh.write("\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
