#!/usr/bin/env python3
"""Embeds texts with sentence-transformers, the way a user's Python stack loads our output.

    python3 scripts/st_embed.py --model DIR --texts texts.jsonl --output out.jsonl \
        [--adapter ADAPTER_DIR [--via st|peft]] [--prompt STR]

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
    ap.add_argument("--model", required=True)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--adapter")
    ap.add_argument("--via", choices=["st", "peft"], default="st")
    ap.add_argument("--prompt")
    args = ap.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model = SentenceTransformer(args.model, device="cpu")
    if args.adapter:
        if args.via == "st":
            model.load_adapter(args.adapter)
        else:
            from peft import PeftModel

            transformer = model[0]
            transformer.auto_model = PeftModel.from_pretrained(
                transformer.auto_model, args.adapter
            )
    model.eval()

    with open(args.texts, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    vectors = model.encode(
        texts,
        prompt=args.prompt,
        batch_size=16,
        convert_to_numpy=True,
    )
    with open(args.output, "w", encoding="utf-8") as f:
        for v in vectors:
            f.write(json.dumps({"embedding": [float(x) for x in v]}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
