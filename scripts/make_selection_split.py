"""Holds out a fixed share of a BEIR train split's queries as a selection (dev) set.

usage: python3 scripts/make_selection_split.py DATA_DIR OUT_DIR [--holdout 0.2] [--seed 18] [--fold K]

OUT_DIR becomes a BEIR directory beside DATA_DIR's files (corpus.jsonl, queries.jsonl and
qrels/test.tsv are links to them) with two new qrels files: qrels/fit.tsv (the train queries
kept for training) and qrels/select.tsv (the held-out ones). The held-out query ids are printed
and written to OUT_DIR/select_ids.txt; every setting of a recipe is chosen on `select`, and
`test` is evaluated once per final run.

--fold K (default 0) picks one of round(1 / holdout) disjoint selection sets (k-fold): fold 0 is
the seeded sample above (the selection set of every run in BENCHMARKS.md before stop 32); the
other train queries are shuffled with the same seed and cut into the remaining folds, so all
round(1 / holdout) folds together hold every train query once.
"""
import argparse
import csv
import os
import random

ap = argparse.ArgumentParser()
ap.add_argument("data")
ap.add_argument("out")
ap.add_argument("--holdout", type=float, default=0.2)
ap.add_argument("--seed", type=int, default=18)
ap.add_argument("--fold", type=int, default=0)
args = ap.parse_args()

rows = list(csv.reader(open(os.path.join(args.data, "qrels", "train.tsv")), delimiter="\t"))
header, rows = rows[0], rows[1:]
queries = sorted({r[0] for r in rows})
rng = random.Random(args.seed)
held = set(rng.sample(queries, round(len(queries) * args.holdout)))
folds = round(1 / args.holdout)
if not 0 <= args.fold < folds:
    ap.error(f"--fold must be in 0..{folds - 1} with --holdout {args.holdout}")
if args.fold > 0:
    rest = sorted(set(queries) - held)
    random.Random(args.seed).shuffle(rest)
    k = args.fold - 1
    held = set(rest[k * len(rest) // (folds - 1):(k + 1) * len(rest) // (folds - 1)])

os.makedirs(os.path.join(args.out, "qrels"), exist_ok=True)
for name in ["corpus.jsonl", "queries.jsonl", os.path.join("qrels", "test.tsv")]:
    link = os.path.join(args.out, name)
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.abspath(os.path.join(args.data, name)), link)
for name, keep in [("fit", lambda q: q not in held), ("select", lambda q: q in held)]:
    with open(os.path.join(args.out, "qrels", f"{name}.tsv"), "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(header)
        w.writerows(r for r in rows if keep(r[0]))
with open(os.path.join(args.out, "select_ids.txt"), "w") as f:
    f.write("\n".join(sorted(held, key=lambda q: (len(q), q))) + "\n")
fit_pairs = sum(1 for r in rows if r[0] not in held)
print(f"{len(queries)} train queries: {len(queries) - len(held)} fit ({fit_pairs} pairs), "
      f"{len(held)} select (seed {args.seed}, fold {args.fold}) -> {args.out}")
