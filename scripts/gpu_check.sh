#!/usr/bin/env bash
# GPU check for a CUDA machine that has no compiler and no registry: run it from binaries built
# beforehand with the CUDA feature, beside the shared assets.
#
#   # on a machine with the toolchain:
#   cargo build --release --features cuda --example encode --example finetune_e5
#   mkdir -p gpu-bin && cp target/release/examples/{encode,finetune_e5} gpu-bin/
#   # on the CUDA machine (python3 is only used to compare numbers, standard library alone):
#   SHARED=../shared scripts/gpu_check.sh gpu-bin
#
# Checks, each printing one line and failing the script when it fails:
#  1. encode parity on --device cuda: all-MiniLM-L6-v2 on the 20 reference texts of
#     $SHARED/reference/minilm_embeddings.jsonl, batch sizes 1, 7 and 32: cosine >= 0.99999 and
#     max |diff| <= 1e-4 against sentence-transformers' embeddings;
#  2. five MNRL training steps on --device cuda (the bundled demo data): the run finishes and
#     its log has five finite losses;
#  3. texts/s: 1,024 SciFact passages (title + text) on --device cuda and on --device cpu, batch 32.
set -euo pipefail
bin=${1:?usage: gpu_check.sh BIN_DIR (holding encode and finetune_e5 built with --features cuda)}
shared=${SHARED:-${EMBEDTUNE_SHARED:-../shared}}
model=$shared/models/all-MiniLM-L6-v2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$shared" "$work" <<'PY'
import json, sys
shared, work = sys.argv[1], sys.argv[2]
refs = [json.loads(l) for l in open(f"{shared}/reference/minilm_embeddings.jsonl") if l.strip()]
with open(f"{work}/ref_texts.jsonl", "w") as f:
    for r in refs:
        f.write(json.dumps({"text": r["text"]}) + "\n")
with open(f"{work}/passages.jsonl", "w") as f:
    for i, l in enumerate(open(f"{shared}/data/scifact/corpus.jsonl")):
        if i == 1024:
            break
        d = json.loads(l)
        f.write(json.dumps({"text": (d.get("title", "") + " " + d["text"]).strip()}) + "\n")
PY

for bs in 1 7 32; do
  "$bin/encode" --model "$model" --input "$work/ref_texts.jsonl" --output "$work/out_$bs.jsonl" \
    --batch-size "$bs" --allow-empty --device cuda
  python3 - "$shared" "$work/out_$bs.jsonl" "$bs" <<'PY'
import json, math, sys
refs = [json.loads(l)["embedding"] for l in open(f"{sys.argv[1]}/reference/minilm_embeddings.jsonl") if l.strip()]
outs = [json.loads(l)["embedding"] for l in open(sys.argv[2])]
assert len(refs) == len(outs), (len(refs), len(outs))
cos = min(sum(a * b for a, b in zip(r, o)) / math.sqrt(sum(a * a for a in r) * sum(b * b for b in o)) for r, o in zip(refs, outs))
diff = max(abs(a - b) for r, o in zip(refs, outs) for a, b in zip(r, o))
ok = cos >= 0.99999 and diff <= 1e-4
print(f"parity cuda batch {sys.argv[3]}: worst cosine {cos:.7f}, max |diff| {diff:.2e}: {'ok' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
PY
done

"$bin/finetune_e5" --model "$model" --device cuda --max-steps 5 --output "$work/run" >"$work/train.txt" 2>&1 ||
  { cat "$work/train.txt"; exit 1; }
python3 - "$work/run/train_log.jsonl" <<'PY'
import json, math, sys
losses = [json.loads(l).get("loss") for l in open(sys.argv[1]) if l.strip()]
losses = [x for x in losses if x is not None]
ok = len(losses) >= 5 and all(math.isfinite(x) for x in losses)
print(f"training on cuda: {len(losses)} steps logged, losses {[round(x, 4) for x in losses[:5]]}: {'ok' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
PY

for dev in cuda cpu; do
  "$bin/encode" --model "$model" --input "$work/passages.jsonl" --output "$work/p_$dev.jsonl" \
    --batch-size 32 --device "$dev" 2>&1 | tail -n 1
done
