"""Writes a sentence-transformers model whose weights lie on the line between two models' weights.

usage: python3 scripts/interpolate_weights.py A_DIR B_DIR OUT_DIR ALPHA

OUT_DIR gets B_DIR's files (config, tokenizer, pooling; not its training logs or checkpoints) and a
model.safetensors with A + ALPHA * (B - A) for every tensor, in float32. Used for the selection runs
in BENCHMARKS.md ("Quality recipe: selection runs"):
- A = the zero-shot model, B = a fine-tuned one: WiSE-FT (weight-space ensembling of the fine-tuned
  and the zero-shot model; ALPHA 1 is the fine-tuned model);
- A, B = the same recipe fine-tuned from the same model with two seeds, ALPHA 0.5: their uniform
  weight average ("model soup").
Both models must have the same tensors and shapes; a `bert.` / `roberta.` prefix on one side only is
ignored. Needs numpy and safetensors.
"""
import os
import sys

import numpy as np
from safetensors.numpy import load_file

from model_weights import bare, load_bare, write_model

if len(sys.argv) != 5:
    sys.exit(__doc__)
a_dir, b_dir, out, alpha = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

a = load_bare(a_dir)
b = load_file(os.path.join(b_dir, "model.safetensors"))
only = set(a) ^ {bare(k) for k in b}
if only:
    sys.exit(f"the two models' tensors differ: {sorted(only)[:5]}")
mixed = {}
for name, wb in b.items():
    wa = a[bare(name)]
    if wa.shape != wb.shape:
        sys.exit(f"{name}: shape {wa.shape} against {wb.shape}")
    if not np.issubdtype(wb.dtype, np.floating):
        mixed[name] = wb  # integer buffers (position ids) are copied
        continue
    wa, wb = wa.astype(np.float32), wb.astype(np.float32)
    mixed[name] = wa + np.float32(alpha) * (wb - wa)

write_model(b_dir, out, mixed)
print(f"{out}: {len(mixed)} tensors, {a_dir} + {alpha} * ({b_dir} - {a_dir})")
