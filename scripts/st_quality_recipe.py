"""The quality recipe in sentence-transformers, for the side-by-side comparison in BENCHMARKS.md:
hard negatives mined with the zero-shot model (`mine_hard_negatives` over the whole corpus),
then MNRL or GISTEmbed (guide: the frozen zero-shot model), no-duplicates batches, linear
schedule with warm-up, then InformationRetrievalEvaluator on the evaluation split.
Built on ../shared/tools/st_finetune.py (same data preparation and evaluation).

usage: st_quality_recipe.py MODEL_DIR DATA_DIR OUT_DIR [--train-split train] [--eval-split test]
       [--seed 42] [--epochs 1] [--lr 2e-5] [--batch 32] [--loss gist|mnrl] [--temperature 0.05]
       [--num-negatives 1] [--range-min 10] [--range-max 50] [--relative-margin 0.05]

Needs scripts/requirements-peer.txt plus `datasets` and `accelerate` (transformers' Trainer).
"""
import argparse
import csv
import json
import random
import time

import torch
from datasets import Dataset
from sentence_transformers import (
    SentenceTransformer,
    SentenceTransformerTrainer,
    SentenceTransformerTrainingArguments,
    losses,
)
from sentence_transformers.evaluation import InformationRetrievalEvaluator
from sentence_transformers.training_args import BatchSamplers
from sentence_transformers.util import mine_hard_negatives

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("data")
ap.add_argument("out")
ap.add_argument("--train-split", default="train")
ap.add_argument("--eval-split", default="test")
ap.add_argument("--seed", type=int, default=42)
ap.add_argument("--epochs", type=int, default=1)
ap.add_argument("--lr", type=float, default=2e-5)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--loss", choices=["gist", "mnrl"], default="gist")
ap.add_argument("--temperature", type=float, default=0.05)
ap.add_argument("--num-negatives", type=int, default=1)
ap.add_argument("--range-min", type=int, default=10)
ap.add_argument("--range-max", type=int, default=50)
ap.add_argument("--relative-margin", type=float, default=0.05)
args = ap.parse_args()

corpus = {}
for line in open(f"{args.data}/corpus.jsonl"):
    d = json.loads(line)
    corpus[d["_id"]] = (d.get("title", "") + " " + d["text"]).strip()
queries = {json.loads(l)["_id"]: json.loads(l)["text"] for l in open(f"{args.data}/queries.jsonl")}


def qrels(split):
    rel = {}
    for r in list(csv.reader(open(f"{args.data}/qrels/{split}.tsv"), delimiter="\t"))[1:]:
        if int(r[2]) > 0:
            rel.setdefault(r[0], set()).add(r[1])
    return rel


train, evaluation = qrels(args.train_split), qrels(args.eval_split)
pairs = [(queries[q], corpus[d]) for q, ds in train.items() for d in sorted(ds)]
pairs_ds = Dataset.from_dict({"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]})
torch.manual_seed(args.seed)
random.seed(args.seed)

model = SentenceTransformer(args.model, device="cpu")
guide = SentenceTransformer(args.model, device="cpu")
t0 = time.time()
mined = mine_hard_negatives(
    pairs_ds,
    guide,
    corpus=list(corpus.values()),
    range_min=args.range_min,
    range_max=args.range_max,
    relative_margin=args.relative_margin,
    num_negatives=args.num_negatives,
    sampling_strategy="top",
    batch_size=32,
    output_format="n-tuple",
)
mining_s = time.time() - t0
print(f"mined {len(mined)} of {len(pairs_ds)} pairs in {mining_s:.1f}s", flush=True)

if args.loss == "gist":
    loss = losses.GISTEmbedLoss(model, guide=guide, temperature=args.temperature)
else:
    loss = losses.MultipleNegativesRankingLoss(model)
training = SentenceTransformerTrainingArguments(
    output_dir=args.out + "/ckpt", num_train_epochs=args.epochs, per_device_train_batch_size=args.batch,
    learning_rate=args.lr, warmup_ratio=0.1, lr_scheduler_type="linear", seed=args.seed,
    batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", logging_steps=5, report_to=[],
    use_cpu=True)
trainer = SentenceTransformerTrainer(model=model, args=training, train_dataset=mined, loss=loss)
t0 = time.time()
trainer.train()
train_s = time.time() - t0
steps = trainer.state.global_step
print(f"train {train_s:.1f}s, {steps} steps", flush=True)
model.save(args.out + "/model")
evaluator = InformationRetrievalEvaluator(
    {q: queries[q] for q in evaluation}, corpus, evaluation, name="eval", batch_size=32,
    accuracy_at_k=[1, 10], precision_recall_at_k=[1, 10, 100], mrr_at_k=[10], ndcg_at_k=[10],
    map_at_k=[100], show_progress_bar=False)
metrics = evaluator(model)
print(json.dumps({k: round(v, 5) for k, v in metrics.items()}, indent=1))
json.dump({"args": vars(args), "mined": len(mined), "mining_s": mining_s, "train_s": train_s,
           "steps": steps, "metrics": metrics}, open(args.out + "/result.json", "w"), indent=1)
