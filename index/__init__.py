"""Documents -> vectors -> answers: embedder, FAISS and BM25 indexes, search."""
