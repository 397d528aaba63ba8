"""Load test of an OpenAI-compatible embedding server (ours, or infinity-emb for comparison).

N concurrent clients for T seconds on loopback, each sending, one after another, either a short
query (one SciFact query) or a batch of long passages (--passages SciFact passages, title +
text), half and half, chosen by a seeded generator so that every server gets the same mix.
Reports requests, texts and tokens-free throughput (texts/s, requests/s) and the latency
percentiles of the requests that completed inside the window, as one JSON line.

usage: load_test.py URL MODEL SCIFACT_DIR [--clients N] [--seconds T] [--passages K]
       [--warmup S] [--path /v1/embeddings] [--label NAME]
"""

import argparse
import asyncio
import json
import random
import statistics
import time

import httpx


def load_texts(scifact):
    passages, queries = [], []
    with open(f"{scifact}/corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            passages.append((d.get("title", "") + " " + d["text"]).strip())
    with open(f"{scifact}/queries.jsonl", encoding="utf-8") as f:
        for line in f:
            queries.append(json.loads(line)["text"])
    return passages, queries


async def client(i, args, url, passages, queries, start, end, results):
    rng = random.Random(1000 + i)
    async with httpx.AsyncClient(timeout=120.0) as http:
        while time.perf_counter() < end:
            if rng.random() < 0.5:
                texts = [rng.choice(queries)]
            else:
                texts = rng.sample(passages, args.passages)
            sent = time.perf_counter()
            try:
                r = await http.post(url, json={"model": args.model, "input": texts})
                status = r.status_code
                if status == 200:
                    assert len(r.json()["data"]) == len(texts)
            except Exception as e:  # noqa: BLE001 - counted, not fatal
                status = type(e).__name__
            done = time.perf_counter()
            if sent >= start and done <= end:
                results.append((status, done - sent, len(texts)))


async def run(args):
    passages, queries = load_texts(args.scifact)
    url = args.url.rstrip("/") + args.path
    # warm-up: every client's first requests are not counted
    now = time.perf_counter()
    start, end = now + args.warmup, now + args.warmup + args.seconds
    results = []
    await asyncio.gather(
        *(client(i, args, url, passages, queries, start, end, results) for i in range(args.clients))
    )
    ok = [r for r in results if r[0] == 200]
    lat = sorted(r[1] * 1000 for r in ok)

    def pct(p):
        return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))], 1) if lat else None

    print(
        json.dumps(
            {
                "label": args.label,
                "clients": args.clients,
                "seconds": args.seconds,
                "passages_per_batch": args.passages,
                "requests_ok": len(ok),
                "requests_failed": len(results) - len(ok),
                "texts_per_s": round(sum(r[2] for r in ok) / args.seconds, 2),
                "requests_per_s": round(len(ok) / args.seconds, 2),
                "p50_ms": pct(50),
                "p95_ms": pct(95),
                "p99_ms": pct(99),
                "mean_ms": round(statistics.mean(lat), 1) if lat else None,
            }
        )
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("model")
    p.add_argument("scifact")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--passages", type=int, default=4)
    p.add_argument("--warmup", type=float, default=10.0)
    p.add_argument("--path", default="/v1/embeddings")
    p.add_argument("--label", default="")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
