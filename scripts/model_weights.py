"""Helpers of interpolate_weights.py and average_weights.py: reading a sentence-transformers model's
weights and writing a model directory with new ones (atomically: a temporary directory, then a rename)."""
import os
import shutil

from safetensors.numpy import load_file, save_file


def bare(name):
    """The tensor name without a `bert.` / `roberta.` prefix."""
    for p in ("bert.", "roberta."):
        if name.startswith(p):
            return name[len(p):]
    return name


def load_bare(path):
    """The tensors of a model directory (its model.safetensors) or a safetensors file, by bare name."""
    if os.path.isdir(path):
        path = os.path.join(path, "model.safetensors")
    return {bare(k): v for k, v in load_file(path).items()}


def write_model(template, out, tensors):
    """Writes OUT as TEMPLATE's files (config, tokenizer, pooling; not its training logs or
    checkpoints) with `tensors` as its model.safetensors."""
    tmp = out + ".tmp"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    shutil.copytree(template, tmp, ignore=shutil.ignore_patterns(
        "checkpoint*", "checkpoints", "best", "adapter", "*.jsonl", "*.svg", "report.json"))
    save_file(tensors, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
    # The old OUT goes only once the new one is complete.
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(tmp, out)
