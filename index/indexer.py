"""Keep the vector and keyword indexes in step with the store.

* Embeddings are cached in the database, keyed by (model, content hash): a text is embedded
  once, whatever happens to the index files. Each batch is committed, so a killed run keeps
  its work and the next run carries on.
* Index files are written under new names, then a manifest is renamed into place; a crash
  leaves the previous manifest and its files intact. The manifest records the store
  generation it reflects; a newer generation means "out of step" and is caught up
  incrementally (changed rows only), or by a full rebuild when anything looks wrong.
* Indexing only indexes. Matching what was indexed is the next step of the pipeline
  (index/pipeline.py), so this module knows nothing of matching and nothing here imports it.

    report = update_index(store, settings, show_progress=True)
    indexes = open_indexes(store, settings, embedder)
"""

from __future__ import annotations

import fcntl
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from tqdm.auto import tqdm

from core.fsutil import atomic_write_json
from core.settings import Settings
from core.store import Store, documents
from index.embedder import Embedder, get_embedder, model_slug
from index.keyword import KeywordIndex
from index.vector_index import VectorIndex
from index.vectors import embedded_count, embeddings, vectors_for

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
EMBED_CHUNK = 512


@dataclass(slots=True)
class IndexReport:
    """What an index update did."""

    embedded: int = 0
    indexed: int = 0
    changed: int = 0
    rebuilt: bool = False
    up_to_date: bool = False
    kind: str = "flat"
    generation: int = 0  # the store generation the index files now reflect
    matched: int = 0  # filled by index.pipeline.index_and_match; update_index leaves it 0
    seconds: float = 0.0


@dataclass(slots=True)
class Manifest:
    model: str
    dim: int
    generation: int
    count: int
    kind: str
    vectors_file: str
    keywords_file: str
    version: int = MANIFEST_VERSION


def index_folder(settings: Settings, model: str) -> Path:
    return settings.index_dir / model_slug(model)


def read_manifest(folder: Path) -> Manifest | None:
    path = folder / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest(**data)
    except (OSError, ValueError, TypeError):
        return None
    if manifest.version != MANIFEST_VERSION:
        return None
    if (
        not (folder / manifest.vectors_file).is_file()
        or not (folder / manifest.keywords_file).is_file()
    ):
        return None
    return manifest


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One index writer at a time, across processes."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pending_query(model: str, after: int, limit: int) -> sa.Select:
    join = documents.outerjoin(
        embeddings,
        sa.and_(embeddings.c.content_hash == documents.c.content_hash, embeddings.c.model == model),
    )
    return (
        sa.select(documents.c.id, documents.c.content_hash, documents.c.title, documents.c.text)
        .select_from(join)
        .where(embeddings.c.content_hash.is_(None), documents.c.id > after)
        .order_by(documents.c.id)
        .limit(limit)
    )


def pending_count(store: Store, model: str) -> int:
    join = documents.outerjoin(
        embeddings,
        sa.and_(embeddings.c.content_hash == documents.c.content_hash, embeddings.c.model == model),
    )
    query = (
        sa.select(sa.func.count(sa.distinct(documents.c.content_hash)))
        .select_from(join)
        .where(embeddings.c.content_hash.is_(None))
    )
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def embed_pending(
    store: Store,
    embedder: Embedder,
    *,
    batch_size: int = 64,
    show_progress: bool = False,
    chunk: int = EMBED_CHUNK,
) -> int:
    """Embed every document whose content hash has no vector for this model yet."""
    total = pending_count(store, embedder.name)
    if total == 0:
        return 0
    done = 0
    last = 0
    with tqdm(
        total=total, desc="Embedding", unit="doc", disable=not show_progress, leave=True
    ) as bar:
        while True:
            with store.engine.connect() as conn:
                rows = conn.execute(_pending_query(embedder.name, last, chunk)).all()
            if not rows:
                break
            last = rows[-1].id
            texts: dict[str, str] = {}
            for row in rows:
                texts.setdefault(
                    row.content_hash, f"{row.title}. {row.text}" if row.text else row.title
                )
            hashes = list(texts)
            vectors = embedder.encode([texts[h] for h in hashes], batch_size=batch_size)
            with store.write() as conn:
                conn.execute(
                    embeddings.insert(),
                    [
                        {"model": embedder.name, "content_hash": h, "vector": v.tobytes()}
                        for h, v in zip(hashes, vectors, strict=True)
                    ],
                )
            done += len(hashes)
            bar.update(len(hashes))
    return done


def keyword_documents(store: Store) -> Iterator[tuple[int, str, str]]:
    """(row id, title, text) of every stored document, what the keyword index is built from."""
    for batch in store.iter_documents(batch_size=5000):
        for doc in batch:
            yield doc.id or 0, doc.title, doc.text


def update_index(
    store: Store,
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    show_progress: bool = False,
    force_rebuild: bool = False,
) -> IndexReport:
    """Embed what has no vector yet, then bring the index files in step with the store.

    Matching is not run here: ``index.pipeline.index_and_match`` runs this, then matching.
    """
    started = time.perf_counter()
    embedder = embedder or get_embedder(settings.model, max_chars=settings.embed_max_chars)
    folder = index_folder(settings, embedder.name)
    report = IndexReport()
    with _locked(folder):
        report.embedded = embed_pending(
            store,
            embedder,
            batch_size=settings.embed_batch_size,
            chunk=settings.embed_chunk,
            show_progress=show_progress,
        )
        generation = store.generation()
        report.generation = generation
        manifest = read_manifest(folder)
        if (
            manifest is not None
            and not force_rebuild
            and manifest.generation == generation
            and manifest.model == embedder.name
        ):
            report.up_to_date = True
            report.indexed = manifest.count
            report.kind = manifest.kind
        else:
            expected = embedded_count(store, embedder.name)
            vectors = _sync_vectors(
                store, settings, embedder, folder, manifest, expected, report, force_rebuild
            )
            keywords = _sync_keywords(store, embedder, folder, manifest, force_rebuild)
            _commit(folder, embedder, generation, vectors, keywords, manifest)
            report.indexed = len(vectors)
            report.kind = vectors.kind
    report.seconds = time.perf_counter() - started
    log.info("index update: %s", asdict(report))
    return report


def _sync_keywords(
    store: Store,
    embedder: Embedder,
    folder: Path,
    manifest: Manifest | None,
    force_rebuild: bool,
) -> KeywordIndex:
    """The keyword index brought up to date: only changed documents are tokenized again,
    unless there is no usable previous index."""
    if manifest is not None and not force_rebuild and manifest.model == embedder.name:
        try:
            previous = KeywordIndex.load(folder / manifest.keywords_file)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("keyword index unreadable (%s); rebuilding it", exc)
        else:
            changed = store.changed_ids(manifest.generation)
            docs = store.get_many(changed.tolist())
            keywords = previous.updated(
                changed, ((i, d.title, d.text) for i, d in sorted(docs.items()))
            )
            if len(keywords) == store.count():
                return keywords
            log.warning(
                "keyword index holds %d documents, the store %d; rebuilding it",
                len(keywords),
                store.count(),
            )
    return KeywordIndex.build(keyword_documents(store))


def _sync_vectors(
    store: Store,
    settings: Settings,
    embedder: Embedder,
    folder: Path,
    manifest: Manifest | None,
    expected: int,
    report: IndexReport,
    force_rebuild: bool,
) -> VectorIndex:
    wants_ivf = expected > settings.ann_threshold
    if manifest is not None and not force_rebuild and manifest.model == embedder.name:
        try:
            vectors = VectorIndex.load(folder / manifest.vectors_file, nprobe=settings.ivf_nprobe)
        except RuntimeError as exc:
            log.warning("index file unreadable (%s); rebuilding", exc)
        else:
            if (vectors.kind == "ivf") == wants_ivf:
                changed = store.changed_ids(manifest.generation)
                vectors.remove(changed)
                ids, vecs = vectors_for(store, embedder.name, embedder.dim, ids=changed)
                if len(ids):
                    vectors.add(vecs, ids)
                report.changed = len(changed)
                if len(vectors) == expected:
                    return vectors
                log.warning(
                    "index holds %d vectors, store has %d embedded documents; rebuilding",
                    len(vectors),
                    expected,
                )
    report.rebuilt = True
    ids, vecs = vectors_for(store, embedder.name, embedder.dim)
    return VectorIndex.build(
        vecs,
        ids,
        ann_threshold=settings.ann_threshold,
        nprobe=settings.ivf_nprobe,
        dim=embedder.dim,
    )


def _commit(
    folder: Path,
    embedder: Embedder,
    generation: int,
    vectors: VectorIndex,
    keywords: KeywordIndex,
    previous: Manifest | None,
) -> None:
    stamp = f"g{generation}-{time.time_ns()}"
    manifest = Manifest(
        model=embedder.name,
        dim=embedder.dim,
        generation=generation,
        count=len(vectors),
        kind=vectors.kind,
        vectors_file=f"vectors-{stamp}.faiss",
        keywords_file=f"keywords-{stamp}.npz",
    )
    vectors.save(folder / manifest.vectors_file)
    keywords.save(folder / manifest.keywords_file)
    atomic_write_json(folder / "manifest.json", asdict(manifest))
    keep = {manifest.vectors_file, manifest.keywords_file, "manifest.json", ".lock"}
    for path in folder.iterdir():
        if path.name not in keep and not path.name.startswith(".manifest.json."):
            path.unlink(missing_ok=True)


@dataclass(slots=True)
class LoadedIndexes:
    manifest: Manifest
    vectors: VectorIndex
    keywords: KeywordIndex


def open_indexes(store: Store, settings: Settings, embedder: Embedder) -> LoadedIndexes:
    """The index files as they are on disk (empty indexes when there are none yet).

    Nothing is brought up to date here: ``index.pipeline.load_indexes`` indexes and matches
    first when the files are missing or behind the store.
    """
    folder = index_folder(settings, embedder.name)
    manifest = read_manifest(folder)
    if manifest is None:
        empty_vectors = VectorIndex.empty(embedder.dim)
        empty_keywords = KeywordIndex.build([])
        manifest = Manifest(embedder.name, embedder.dim, -1, 0, "flat", "", "")
        return LoadedIndexes(manifest, empty_vectors, empty_keywords)
    try:
        keywords = KeywordIndex.load(folder / manifest.keywords_file)
    except (OSError, ValueError, KeyError) as exc:
        # e.g. a file written by an older Veille: rebuild it in place (same name, atomic)
        log.warning("keyword index unreadable (%s); rebuilding it", exc)
        with _locked(folder):
            keywords = KeywordIndex.build(keyword_documents(store))
            keywords.save(folder / manifest.keywords_file)
    return LoadedIndexes(
        manifest,
        VectorIndex.load(folder / manifest.vectors_file, nprobe=settings.ivf_nprobe),
        keywords,
    )


def index_status(store: Store, settings: Settings, model: str | None = None) -> dict[str, Any]:
    """Index facts for ``veille stats``: size, kind, whether it is current."""
    model = model or settings.model
    manifest = read_manifest(index_folder(settings, model))
    return {
        "model": model,
        "vectors": manifest.count if manifest else 0,
        "kind": manifest.kind if manifest else None,
        "current": bool(manifest and manifest.generation == store.generation()),
        "pending_embeddings": pending_count(store, model),
    }
