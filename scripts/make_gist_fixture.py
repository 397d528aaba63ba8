"""Writes crates/losses/tests/fixtures/gist.json: float64 model and guide embeddings, and the
loss value and d(loss)/d(model embeddings) of sentence-transformers' GISTEmbedLoss (and, for
two hard-negative columns, which GISTEmbedLoss does not take, CachedGISTEmbedLoss).

usage: python3 scripts/make_gist_fixture.py MODEL_DIR [OUT]
MODEL_DIR: any sentence-transformers model directory (the losses need one to be built; its
weights are not used: the embeddings are given directly).
"""
import json
import sys

import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer, losses

model_dir = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else "crates/losses/tests/fixtures/gist.json"
st = SentenceTransformer(model_dir, device="cpu")


class Given(torch.nn.Module):
    """Stands in for a model: returns the embeddings stored in the features under `key`."""

    def __init__(self, key):
        super().__init__()
        self.key = key

    def forward(self, features, **kwargs):
        return {"sentence_embedding": features[self.key]}


gen = torch.Generator().manual_seed(7)


def randn(*shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def case(name, loss_cls, params, n, d, d_guide, negatives):
    columns = 2 + negatives
    model_emb = [randn(n, d) for _ in range(columns)]
    # The guide sees related but different embeddings, so that some candidates score above the
    # positive (and are masked) and others do not.
    mix = randn(d, d_guide)
    guide_emb = [(m @ mix) + 0.8 * randn(n, d_guide) for m in model_emb]
    leaves = [m.clone().requires_grad_(True) for m in model_emb]
    loss = loss_cls(st, guide=st, **params)
    loss.model = Given("emb")
    loss.guide = Given("guide")
    loss.must_retokenize = False
    features = [{"emb": leaf, "guide": g, "input_ids": torch.zeros(n, 1, dtype=torch.long)}
                for leaf, g in zip(leaves, guide_emb)]
    value = loss(features, None)
    value.backward()
    return {
        "name": name,
        "loss_class": loss_cls.__name__,
        "params": params,
        "inputs": [m.tolist() for m in model_emb],
        "guide": [g.tolist() for g in guide_emb],
        "loss": value.item(),
        "grads": [leaf.grad.tolist() for leaf in leaves],
    }


cases = [
    case("pairs_default", losses.GISTEmbedLoss, {}, 6, 8, 5, 0),
    case("one_negative", losses.GISTEmbedLoss, {}, 6, 8, 5, 1),
    case("absolute_margin", losses.GISTEmbedLoss,
         {"margin_strategy": "absolute", "margin": 0.1}, 6, 8, 5, 1),
    case("relative_margin", losses.GISTEmbedLoss,
         {"margin_strategy": "relative", "margin": 0.05}, 6, 8, 5, 1),
    case("no_contrast", losses.GISTEmbedLoss,
         {"contrast_anchors": False, "contrast_positives": False, "temperature": 0.05}, 5, 7, 4, 1),
    case("cached_two_negatives", losses.CachedGISTEmbedLoss,
         {"mini_batch_size": 2, "margin": 0.05}, 5, 8, 5, 2),
]
json.dump({
    "note": "sentence-transformers %s, torch %s; float64; scripts/make_gist_fixture.py" % (
        sentence_transformers.__version__, torch.__version__),
    "cases": cases,
}, open(out, "w"))
print(f"wrote {out}: " + ", ".join(f"{c['name']} {c['loss']:.6f}" for c in cases))
