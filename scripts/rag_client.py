"""The user's RAG stack against our embedding server (tests/python_peer.rs).

Given a running `serve` example, this
1. embeds texts with the `openai` client (its default request, base64-encoded floats, and
   explicit float), and
2. builds a LlamaIndex `VectorStoreIndex` over a corpus (`{"_id", "text"}` lines, the texts
   our evaluator embeds) in a persistent Chroma collection
   with `OpenAILikeEmbedding` pointed at the server, then retrieves the top passage of each
   query,
and writes everything as JSON.

usage: rag_client.py BASE_URL MODEL TEXTS.jsonl CORPUS.jsonl QUERIES.json CHROMA_DIR OUT.json
"""

import json
import sys


def main():
    base_url, model, texts_path, corpus_path, queries_path, chroma_dir, out_path = sys.argv[1:8]
    texts = [json.loads(line)["text"] for line in open(texts_path, encoding="utf-8") if line.strip()]
    corpus = [json.loads(line) for line in open(corpus_path, encoding="utf-8") if line.strip()]
    queries = json.load(open(queries_path, encoding="utf-8"))

    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="unused")
    default = client.embeddings.create(model=model, input=texts)
    floats = client.embeddings.create(model=model, input=texts, encoding_format="float")
    one = client.embeddings.create(model=model, input=texts[0])

    import chromadb
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.openai_like import OpenAILikeEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    embed_model = OpenAILikeEmbedding(
        model_name=model, api_base=base_url, api_key="unused", embed_batch_size=16
    )
    chroma = chromadb.PersistentClient(path=chroma_dir)
    collection = chroma.get_or_create_collection("superannuation", metadata={"hnsw:space": "cosine"})
    store = ChromaVectorStore(chroma_collection=collection)
    nodes = [
        TextNode(id_=doc["_id"], text=doc["text"])
        for doc in corpus
    ]
    index = VectorStoreIndex(
        nodes,
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=embed_model,
    )
    retriever = index.as_retriever(similarity_top_k=1)
    top = {q["id"]: retriever.retrieve(q["text"])[0].node.node_id for q in queries}

    json.dump(
        {
            "default": [d.embedding for d in default.data],
            "float": [d.embedding for d in floats.data],
            "single": one.data[0].embedding,
            "usage": default.usage.total_tokens,
            "collection_count": collection.count(),
            "top": top,
        },
        open(out_path, "w", encoding="utf-8"),
    )


if __name__ == "__main__":
    main()
