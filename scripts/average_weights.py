"""Writes a sentence-transformers model whose weights are the uniform average of several models'.

usage: python3 scripts/average_weights.py TEMPLATE_DIR OUT_DIR WEIGHTS...

WEIGHTS are model directories (their model.safetensors) or safetensors files; OUT_DIR gets
TEMPLATE_DIR's files (config, tokenizer, pooling; not its training logs or checkpoints) and a
model.safetensors with the mean of every tensor over WEIGHTS, in float32. Used for the selection
runs in BENCHMARKS.md ("Quality recipe: selection runs", tail averaging): the checkpoints one run
wrote along its last epoch, averaged (stochastic weight averaging over the run's tail). A
`bert.` / `roberta.` prefix is ignored when matching names; the template's names are kept.
Needs numpy and safetensors.
"""
import os
import sys

import numpy as np
from safetensors.numpy import load_file

from model_weights import bare, load_bare, write_model

if len(sys.argv) < 4:
    sys.exit(__doc__)
template, out, sources = sys.argv[1], sys.argv[2], sys.argv[3:]

names = load_file(os.path.join(template, "model.safetensors"))
shapes = {bare(k): v.shape for k, v in names.items()}
sums, first = {}, None
for src in sources:
    w = load_bare(src)
    if first is None:
        first = w
    only = set(w) ^ set(shapes)
    if only:
        sys.exit(f"{src}: its tensors differ from the template's: {sorted(only)[:5]}")
    for name, t in w.items():
        if t.shape != shapes[name]:
            sys.exit(f"{src}: {name} has shape {t.shape}, the template's {shapes[name]}")
        if np.issubdtype(t.dtype, np.floating):
            sums[name] = sums.get(name, 0) + t.astype(np.float64)

mean = {}
for name, t in names.items():
    b = bare(name)
    if b in sums:
        mean[name] = (sums[b] / len(sources)).astype(np.float32)
    else:
        mean[name] = first[b]  # integer buffers (position ids) are copied

write_model(template, out, mean)
print(f"{out}: {len(mean)} tensors, the mean of {len(sources)} models")
