"""The embeddings cache: one vector per (model, content hash), shared by every index module.

The indexer fills it; matching, the learned matcher and trends read it. It lives in its own
module so that those readers do not import the indexer (which runs matching after an update).

    ids, vectors = vectors_for(store, embedder.name, embedder.dim, ids=np.array([1, 2]))
"""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from core.schema import embeddings
from core.store import Store, documents


def vectors_for(
    store: Store, model: str, dim: int, *, ids: np.ndarray | None = None, batch: int = 20_000
) -> tuple[np.ndarray, np.ndarray]:
    """(row ids, vectors) of embedded documents, all of them or those in ``ids``."""
    join = documents.join(
        embeddings,
        sa.and_(embeddings.c.content_hash == documents.c.content_hash, embeddings.c.model == model),
    )
    out_ids: list[np.ndarray] = []
    out_vecs: list[np.ndarray] = []

    def collect(query: sa.Select) -> None:
        with store.engine.connect() as conn:
            rows = conn.execute(query).all()
        if rows:
            out_ids.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
            buf = b"".join(r[1] for r in rows)
            out_vecs.append(np.frombuffer(buf, dtype=np.float32).reshape(len(rows), dim))

    base = sa.select(documents.c.id, embeddings.c.vector).select_from(join)
    if ids is not None:
        # Two indexed lookups per chunk (ids -> hashes -> vectors): a join filtered on a list
        # of ids can make SQLite scan the whole embeddings table, blobs included.
        wanted = np.asarray(ids, dtype=np.int64).tolist()
        with store.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                pairs = conn.execute(
                    sa.select(documents.c.id, documents.c.content_hash).where(
                        documents.c.id.in_(wanted[start : start + 500])
                    )
                ).all()
                by_hash: dict[str, list[int]] = {}
                for doc_id, chash in pairs:
                    by_hash.setdefault(chash, []).append(doc_id)
                rows = conn.execute(
                    sa.select(embeddings.c.content_hash, embeddings.c.vector).where(
                        embeddings.c.model == model, embeddings.c.content_hash.in_(list(by_hash))
                    )
                ).all()
                found = [(doc_id, vec) for chash, vec in rows for doc_id in by_hash[chash]]
                if found:
                    found.sort()
                    out_ids.append(np.fromiter((f[0] for f in found), np.int64, len(found)))
                    buf = b"".join(f[1] for f in found)
                    out_vecs.append(np.frombuffer(buf, dtype=np.float32).reshape(len(found), dim))
    else:
        last = 0
        while True:
            before = sum(len(a) for a in out_ids)
            collect(base.where(documents.c.id > last).order_by(documents.c.id).limit(batch))
            after = sum(len(a) for a in out_ids)
            if after == before:
                break
            last = int(out_ids[-1][-1])
    if not out_ids:
        return np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32)
    return np.concatenate(out_ids), np.concatenate(out_vecs)


def embedded_count(store: Store, model: str) -> int:
    join = documents.join(
        embeddings,
        sa.and_(embeddings.c.content_hash == documents.c.content_hash, embeddings.c.model == model),
    )
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(join)).scalar_one())
