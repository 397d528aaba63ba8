#!/usr/bin/env python3
"""Embeds texts with sentence-transformers, the way a user's Python stack loads our output.

    python3 scripts/st_embed.py --model DIR --texts texts.jsonl --output out.jsonl \
        [--adapter ADAPTER_DIR [--via st|peft]] [--prompt STR]
    python3 scripts/st_embed.py --jobs jobs.jsonl

--jobs runs many such embeddings in one process (one import of torch instead of one per
embedding): each line is an object with the keys "model", "texts", "output" and optionally
"adapter", "via" and "prompt", meaning what the flags of the same names mean.

--texts is JSON Lines with a "text" field per line (the input of `examples/encode.rs`);
--output gets one {"embedding": [...]} per line (the output of `examples/encode.rs`).

--adapter loads a LoRA adapter directory (PEFT's adapter_config.json +
adapter_model.safetensors, as `SentenceEncoder::save_lora_adapter` and `finetune_e5 --lora-r`
write it) on top of --model, either with sentence-transformers' own `load_adapter` (--via st,
the default) or by wrapping the transformer with `peft.PeftModel.from_pretrained` (--via peft).

Used by the root test `tests/python_peer.rs` (cargo test), which compares these embeddings
with ours; needs `torch`, `sentence-transformers` and (for --adapter) `peft`
(scripts/requirements-peer.txt).
"""

import argparse
import json
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs")
    ap.add_argument("--model")
    ap.add_argument("--texts")
    ap.add_argument("--output")
    ap.add_argument("--adapter")
    ap.add_argument("--via", choices=["st", "peft"], default="st")
    ap.add_argument("--prompt")
    args = ap.parse_args()

    if args.jobs:
        with open(args.jobs, encoding="utf-8") as f:
            jobs = [json.loads(line) for line in f if line.strip()]
    elif args.model and args.texts and args.output:
        jobs = [vars(args)]
    else:
        ap.error("give --jobs, or --model, --texts and --output")

    models = {}
    for job in jobs:
        adapter = job.get("adapter")
        via = job.get("via") or "st"
        if via not in ("st", "peft"):
            raise SystemExit(f"{args.jobs}: unknown via {via!r}")
        key = (job["model"], adapter, via if adapter else None)
        if key not in models:
            models[key] = load(job["model"], adapter, via)
        embed(models[key], job["texts"], job["output"], job.get("prompt"))
    return 0


def load(path, adapter, via):
    """The model in `path`, with the LoRA adapter in `adapter` loaded `via` st or peft."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model = SentenceTransformer(path, device="cpu")
    if adapter:
        if via == "st":
            model.load_adapter(adapter)
        else:
            from peft import PeftModel

            transformer = model[0]
            transformer.auto_model = PeftModel.from_pretrained(
                transformer.auto_model, adapter
            )
    model.eval()
    return model


def embed(model, texts_path, output, prompt):
    """Writes the embeddings of the texts in `texts_path` to `output`, one JSON line each."""
    with open(texts_path, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    vectors = model.encode(
        texts,
        prompt=prompt,
        batch_size=16,
        convert_to_numpy=True,
    )
    with open(output, "w", encoding="utf-8") as f:
        for v in vectors:
            f.write(json.dumps({"embedding": [float(x) for x in v]}) + "\n")


if __name__ == "__main__":
    sys.exit(main())
