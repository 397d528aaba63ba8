"""Train with sentence-transformers on exactly the batches our trainer draws, and compare the runs.

Our runs and sentence-transformers' differ per seed in their random draws (batch order, dropout
masks). With dropout off (a copy of the model directory whose config.json sets
hidden_dropout_prob and attention_probs_dropout_prob to 0) and the same batches, the two trainers
should compute the same function: this script checks that over a whole run.

    cargo run --release -p embedtune-data --example sampler_batches -- DATA.jsonl 7 batches.json
    finetune_e5 --model NODROP --prompts none --max-seq-len 256 --recipe st --epochs 2 --lr 1e-4 \
        --seed 7 --data DATA.jsonl --eval-data SCIFACT --eval-split test --output OURS
    python3 scripts/st_same_batches.py NODROP batches.json ST_OUT --lr 1e-4 \
        --eval-data SCIFACT --eval-split test --compare OURS

Needs scripts/requirements-peer.txt plus `accelerate` (transformers' Trainer).

Writes ST_OUT/model (the trained model), ST_OUT/log_history.json (loss, grad norm, learning rate
per step) and ST_OUT/metrics.json (its InformationRetrievalEvaluator on the split). With
--compare it prints, step by step, our loss / gradient norm / learning rate beside its own, then
the largest differences, the distance between the two final models' weights (against how far
training moved them) and both runs' metrics. Needs torch, sentence-transformers, transformers,
datasets and safetensors.
"""
import argparse
import csv
import json
import os
import random
import time

import numpy as np
import torch
from datasets import Dataset
from safetensors.numpy import load_file
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
from sentence_transformers import SentenceTransformerTrainingArguments
from sentence_transformers.base.sampler import DefaultBatchSampler
from sentence_transformers.evaluation import InformationRetrievalEvaluator
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss


def ir_evaluator(data_dir, split):
    corpus = {}
    for line in open(os.path.join(data_dir, "corpus.jsonl")):
        d = json.loads(line)
        corpus[str(d["_id"])] = (d.get("title", "") + " " + d["text"]).strip()
    queries = {}
    for line in open(os.path.join(data_dir, "queries.jsonl")):
        d = json.loads(line)
        queries[str(d["_id"])] = d["text"]
    relevant = {}
    with open(os.path.join(data_dir, "qrels", f"{split}.tsv")) as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    for q, doc, score in rows:
        if int(score) > 0:
            relevant.setdefault(q, set()).add(doc)
    return InformationRetrievalEvaluator(
        {q: queries[q] for q in relevant}, corpus, relevant, name="eval", batch_size=32,
        accuracy_at_k=[1, 10], precision_recall_at_k=[1, 10], mrr_at_k=[10], ndcg_at_k=[10],
        map_at_k=[100], show_progress_bar=False)


def compare(ours_dir, st_out, start_dir, log_history, metrics):
    log = [json.loads(line) for line in open(os.path.join(ours_dir, "train_log.jsonl"))]
    ours = [entry["record"] for entry in log if entry["type"] == "step"]
    st = [r for r in log_history if "loss" in r and "grad_norm" in r]
    print(f"steps: ours {len(ours)}, sentence-transformers {len(st)}")
    print("step     loss ours       loss st   grad-norm ours  grad-norm st       lr ours         lr st")
    for o, s in zip(ours, st):
        print(f"{o['step']:4d} {o['loss']:13.7f} {s['loss']:13.7f} {o['grad_norm']:15.6f} "
              f"{s['grad_norm']:13.6f} {o['lr']:13.4e} {s['learning_rate']:13.4e}")
    pairs = list(zip(ours, st))
    print("max |loss difference| %.3e, max relative %.3e; max relative grad-norm difference %.3e" % (
        max(abs(o["loss"] - s["loss"]) for o, s in pairs),
        max(abs(o["loss"] - s["loss"]) / abs(s["loss"]) for o, s in pairs),
        max(abs(o["grad_norm"] - s["grad_norm"]) / s["grad_norm"] for o, s in pairs)))

    a = load_file(os.path.join(ours_dir, "model.safetensors"))
    b = load_file(os.path.join(st_out, "model", "model.safetensors"))
    start = load_file(os.path.join(start_dir, "model.safetensors"))
    strip = lambda k: k[5:] if k.startswith("bert.") else k
    start = {strip(k): v for k, v in start.items()}
    common = sorted(set(a) & set(b) & set(start))
    worst = max(float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in common)
    apart = np.sqrt(sum(((a[k].astype(np.float64) - b[k]) ** 2).sum() for k in common))
    moved = np.sqrt(sum(((b[k].astype(np.float64) - start[k]) ** 2).sum() for k in common))
    print(f"{len(common)} tensors: max |ours - st| {worst:.3e}; ||ours - st|| {apart:.4e} against "
          f"||st - start|| {moved:.4f} (ratio {apart / moved:.2e})")
    report = json.load(open(os.path.join(ours_dir, "report.json")))
    for key in ["ndcg@10", "recall@10", "mrr@10", "map@100", "accuracy@1"]:
        print(f"{key:10s} ours {report['after'][key]:.6f}  "
              f"sentence-transformers {metrics['eval_cosine_' + key]:.6f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("batches", help="the JSON written by `sampler_batches`")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=7, help="torch / Trainer seed (no effect without dropout)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--max-seq-len", type=int, default=256)
    p.add_argument("--eval-data", help="a BEIR directory to evaluate the trained model on")
    p.add_argument("--eval-split", default="test")
    p.add_argument("--compare", metavar="OURS", help="our finetune_e5 output directory for the same run")
    args = p.parse_args()

    batches = json.load(open(args.batches))
    rows, epochs = batches["examples"], batches["epochs"]
    if any(len(r) != 3 for r in rows):
        raise SystemExit(f"{args.batches}: every example needs exactly one negative (anchor, positive, negative)")
    ds = Dataset.from_dict({"anchor": [r[0] for r in rows], "positive": [r[1] for r in rows],
                            "negative": [r[2] for r in rows]})

    class OurBatches(DefaultBatchSampler):
        """Yields the batches of `sampler_batches` for the Trainer's current epoch."""

        def __iter__(self):
            yield from epochs[self.epoch]

        def __len__(self):
            return len(epochs[self.epoch])

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    model = SentenceTransformer(args.model, device="cpu")
    model.max_seq_length = args.max_seq_len
    cfg = model[0].auto_model.config
    if cfg.hidden_dropout_prob or cfg.attention_probs_dropout_prob:
        print(f"warning: {args.model} has dropout on ({cfg.hidden_dropout_prob}, "
              f"{cfg.attention_probs_dropout_prob}): the runs can agree only in distribution")
    os.makedirs(args.out, exist_ok=True)
    targs = SentenceTransformerTrainingArguments(
        output_dir=os.path.join(args.out, "trainer"), num_train_epochs=len(epochs),
        per_device_train_batch_size=max(len(b) for b in epochs[0]), learning_rate=args.lr,
        warmup_ratio=args.warmup_ratio, lr_scheduler_type="linear", seed=args.seed,
        batch_sampler=OurBatches, save_strategy="no", logging_steps=1, report_to=[], use_cpu=True)
    trainer = SentenceTransformerTrainer(model=model, args=targs, train_dataset=ds,
                                         loss=MultipleNegativesRankingLoss(model))
    t0 = time.time()
    trainer.train()
    print(f"trained {trainer.state.global_step} steps in {time.time() - t0:.0f} s", flush=True)
    json.dump(trainer.state.log_history, open(os.path.join(args.out, "log_history.json"), "w"))
    model.save(os.path.join(args.out, "model"))

    metrics = None
    if args.eval_data:
        metrics = ir_evaluator(args.eval_data, args.eval_split)(model)
        json.dump(metrics, open(os.path.join(args.out, "metrics.json"), "w"), indent=1)
        print(json.dumps({k: round(v, 5) for k, v in metrics.items()}), flush=True)
    if args.compare:
        if metrics is None:
            raise SystemExit("--compare needs --eval-data")
        compare(args.compare, args.out, args.model, trainer.state.log_history, metrics)


if __name__ == "__main__":
    main()
