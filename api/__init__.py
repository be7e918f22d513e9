"""The analyst HTTP API (FastAPI): search, documents, sectors, trends and feedback over
the index and core layers, plus the public pages that digest links open."""
