"""The system of record: documents, duplicates, crawl runs and a small key/value table.

The engine and its retry on a busy database are in core/db.py; the crawl-run methods of
``Store`` in core/crawl_runs.py.

SQLite (WAL) by default, any SQLAlchemy URL otherwise. Every write batch bumps a store
*generation*; changed rows carry it in ``rev`` so derived indexes can catch up
incrementally and tell when they are out of step.

The tables are declared in core/schema.py; this module is the only one that runs SQL on the
five above. Opening a store brings the whole schema to the newest migration (core/migrations).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
import sqlalchemy as sa

from core.crawl_runs import CrawlRuns
from core.db import make_engine, retry_busy, safe_url
from core.fsutil import make_private_dir
from core.models import Document, UpsertResult, arxiv_id, as_utc, naive_now, naive_utc
from core.schema import counters, documents, duplicates, meta
from core.settings import Settings
from core.urls import canonical_url, legacy_canonical_url

log = logging.getLogger(__name__)

_CHUNK = 500


class StoredDocument(NamedTuple):
    """What a crawler needs to know about a document already stored under a canonical id."""

    id: int
    content_hash: str
    extra: dict[str, Any]


# Columns that can change without changing the indexed content.
_META_COLUMNS = ("url", "published", "authors", "categories", "extra")


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Store(CrawlRuns):
    """Documents and crawl runs in one SQL database.

    >>> store = Store("sqlite:///:memory:")  # doctest: +SKIP
    >>> store.upsert([Document("2503.11677", "A title", "Some text")]).new  # doctest: +SKIP
    1
    """

    def __init__(self, url: str, *, busy_timeout: float = 60.0) -> None:
        self.url = url
        self.engine = make_engine(url, busy_timeout=busy_timeout)
        # (revision before, revision after) when opening upgraded the schema, else None.
        self.migrated: tuple[str | None, str] | None = None
        retry_busy(self._migrate, f"opening database {self.display_url}")

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        make_private_dir(settings.data_dir)
        return cls(settings.sqlalchemy_url, busy_timeout=settings.db_busy_timeout)

    @property
    def display_url(self) -> str:
        """The database URL without its password, for messages and logs."""
        return safe_url(self.url)

    def __repr__(self) -> str:
        return f"Store({self.display_url!r})"

    # -- schema -------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Bring the schema to the newest revision (core/migrations); one read when it is."""
        from core import migrations  # noqa: PLC0415 - Alembic loads only when needed

        with self.engine.connect() as conn:
            if migrations.current(conn) == migrations.head():
                return
        try:
            with self.write() as conn:
                # Inside the write lock: two processes starting on a fresh database must not
                # both migrate it (upgrade reads the revision again under the lock).
                before, after = migrations.upgrade(conn)
        except migrations.SchemaTooNew as exc:
            raise migrations.SchemaTooNew(f"database {self.display_url}: {exc}") from None
        if before != after:  # another process may have migrated it since the first read
            self.migrated = (before, after)

    def write(self):
        """A write transaction (BEGIN IMMEDIATE on SQLite)."""
        return self.engine.execution_options(sqlite_begin="IMMEDIATE").begin()

    def close(self) -> None:
        self.engine.dispose()

    def checkpoint(self) -> None:
        """Fold SQLite's write-ahead log into the database and empty it, so deleted data
        does not survive in old log frames (no-op on other databases)."""
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- key/value ----------------------------------------------------------------------

    @staticmethod
    def _set_meta(conn: sa.Connection, key: str, value: str) -> None:
        updated = conn.execute(meta.update().where(meta.c.key == key).values(value=value))
        if updated.rowcount == 0:
            conn.execute(meta.insert().values(key=key, value=value))

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).first()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as conn:
            self._set_meta(conn, key, value)

    def update_meta(
        self, key: str, change: Callable[[str | None], str | None]
    ) -> tuple[str | None, str | None]:
        """Atomically replace the value of ``key`` by ``change(current)`` (None: leave it).
        Returns (before, after), so two processes cannot both see the same old value."""
        with self.write() as conn:
            row = conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).first()
            before = row[0] if row else None
            after = change(before)
            if after is not None:
                self._set_meta(conn, key, after)
        return before, after if after is not None else before

    def generation(self) -> int:
        """Bumped by every write that changes documents."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(counters.c.value).where(counters.c.name == "generation")
                ).scalar_one()
            )

    @staticmethod
    def _bump(conn: sa.Connection) -> int:
        conn.execute(
            counters.update()
            .where(counters.c.name == "generation")
            .values(value=counters.c.value + 1)
        )
        return int(
            conn.execute(
                sa.select(counters.c.value).where(counters.c.name == "generation")
            ).scalar_one()
        )

    # -- documents ----------------------------------------------------------------------

    def upsert(self, docs: Iterable[Document]) -> UpsertResult:
        """Insert new documents, update changed ones, record exact duplicates.

        Same canonical id: one row (a new text updates it). Same content hash under another
        canonical id: recorded in ``duplicates`` and not stored twice. One transaction.
        """
        batch = list(docs)
        result = UpsertResult()
        if not batch:
            return result
        now = naive_now()
        with self.write() as conn:
            existing: dict[str, tuple[int, str]] = {}
            stored_meta: dict[str, tuple] = {}
            meta_cols = [documents.c[name] for name in _META_COLUMNS]
            for part in _chunks(list({d.canonical_id for d in batch})):
                rows = conn.execute(
                    sa.select(
                        documents.c.canonical_id,
                        documents.c.id,
                        documents.c.content_hash,
                        *meta_cols,
                    ).where(documents.c.canonical_id.in_(part))
                )
                for r in rows:
                    existing[r[0]] = (r[1], r[2])
                    stored_meta[r[0]] = tuple(r[3:])
            hashes: dict[str, int] = {}
            for part in _chunks(list({d.content_hash for d in batch})):
                rows = conn.execute(
                    sa.select(documents.c.content_hash, documents.c.id).where(
                        documents.c.content_hash.in_(part)
                    )
                )
                hashes.update({r[0]: r[1] for r in rows})
            known_dups: set[str] = set()
            for part in _chunks(list({d.canonical_id for d in batch})):
                rows = conn.execute(
                    sa.select(duplicates.c.canonical_id).where(duplicates.c.canonical_id.in_(part))
                )
                known_dups.update(r[0] for r in rows)

            gen: int | None = None

            def generation() -> int:
                """The batch's generation, taken at its first change: loading what is
                already stored leaves the index current."""
                nonlocal gen
                if gen is None:
                    gen = self._bump(conn)
                return gen

            for doc in batch:
                row = self._row(doc)
                if doc.canonical_id in existing and doc.kind == "paper":
                    # A paper was published when it first appeared: a later date (a listing
                    # of a new version, a file of announcement dates) must not move it into
                    # recent weeks.
                    first = stored_meta[doc.canonical_id][_META_COLUMNS.index("published")]
                    if first is not None and row["published"] is not None:
                        row["published"] = min(first, row["published"])
                if doc.canonical_id in existing:
                    row_id, old_hash = existing[doc.canonical_id]
                    doc.id = row_id
                    if old_hash == doc.content_hash:
                        fresh = dict(
                            zip(_META_COLUMNS, (row[n] for n in _META_COLUMNS), strict=True)
                        )
                        before = dict(
                            zip(_META_COLUMNS, stored_meta[doc.canonical_id], strict=True)
                        )
                        # Same text, newer metadata (e.g. a new arXiv version with a journal
                        # reference): refresh what is given; the index is not affected.
                        changed = {k: v for k, v in fresh.items() if v and v != before[k]}
                        if changed:
                            generation()
                            conn.execute(
                                documents.update()
                                .where(documents.c.id == row_id)
                                .values(**changed, updated_at=now)
                            )
                            stored_meta[doc.canonical_id] = tuple({**before, **changed}.values())
                            result.updated += 1
                        else:
                            result.unchanged += 1
                    else:
                        row.update(rev=generation(), updated_at=now)
                        # A new version that lacks a date or link keeps the stored ones.
                        if row["published"] is None:
                            del row["published"]
                        if not row["url"]:
                            del row["url"]
                        conn.execute(documents.update().where(documents.c.id == row_id), row)
                        existing[doc.canonical_id] = (row_id, doc.content_hash)
                        stored_meta[doc.canonical_id] = tuple(
                            row.get(n, before_row)
                            for n, before_row in zip(
                                _META_COLUMNS, stored_meta[doc.canonical_id], strict=True
                            )
                        )
                        hashes.setdefault(doc.content_hash, row_id)
                        result.updated += 1
                    result.ids.append(row_id)
                elif doc.content_hash in hashes:
                    doc.id = hashes[doc.content_hash]
                    if doc.canonical_id not in known_dups:
                        conn.execute(
                            duplicates.insert().values(
                                canonical_id=doc.canonical_id,
                                url=doc.url,
                                source=doc.source,
                                content_hash=doc.content_hash,
                                original_id=doc.id,
                                seen_at=now,
                            )
                        )
                        known_dups.add(doc.canonical_id)
                    result.duplicates += 1
                else:
                    row.update(
                        canonical_id=doc.canonical_id,
                        rev=generation(),
                        created_at=now,
                        updated_at=now,
                    )
                    row_id = conn.execute(documents.insert().values(**row)).inserted_primary_key[0]
                    doc.id = int(row_id)
                    existing[doc.canonical_id] = (doc.id, doc.content_hash)
                    stored_meta[doc.canonical_id] = tuple(row[n] for n in _META_COLUMNS)
                    hashes[doc.content_hash] = doc.id
                    result.new += 1
                    result.ids.append(doc.id)
        return result

    @staticmethod
    def _row(doc: Document) -> dict[str, Any]:
        return {
            "kind": doc.kind,
            "source": doc.source,
            "title": doc.title,
            "text": doc.text,
            "url": doc.url,
            "published": naive_utc(doc.published),
            "authors": list(doc.authors),
            "categories": list(doc.categories),
            "language": doc.language,
            "content_hash": doc.content_hash,
            "extra": dict(doc.extra),
        }

    @staticmethod
    def _doc(row: sa.Row) -> Document:
        m = row._mapping
        return Document(
            canonical_id=m["canonical_id"],
            title=m["title"],
            text=m["text"],
            kind=m["kind"],
            source=m["source"],
            url=m["url"],
            published=as_utc(m["published"]),
            authors=list(m["authors"] or []),
            categories=list(m["categories"] or []),
            language=m["language"],
            extra=dict(m["extra"] or {}),
            id=m["id"],
            content_hash=m["content_hash"],
        )

    def sources(self) -> list[str]:
        """The sources of the stored documents, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(documents.c.source).distinct())
            return sorted(str(r[0]) for r in rows if r[0] is not None)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(documents)).scalar_one())

    def get(self, doc_id: int) -> Document | None:
        return self.get_many([doc_id]).get(doc_id)

    def get_many(self, ids: Iterable[int]) -> dict[int, Document]:
        wanted = [int(i) for i in ids]
        found: dict[int, Document] = {}
        with self.engine.connect() as conn:
            for part in _chunks(wanted):
                for row in conn.execute(sa.select(documents).where(documents.c.id.in_(part))):
                    found[row.id] = self._doc(row)
        return found

    def by_canonical_id(self, canonical_id: str) -> Document | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(documents).where(documents.c.canonical_id == canonical_id)
            ).first()
            if row is None:
                dup = conn.execute(
                    sa.select(duplicates.c.original_id).where(
                        duplicates.c.canonical_id == canonical_id
                    )
                ).first()
                if dup is not None:
                    row = conn.execute(sa.select(documents).where(documents.c.id == dup[0])).first()
        return self._doc(row) if row is not None else None

    def resolve(self, identifier: str) -> Document | None:
        """Find a document by canonical id, arXiv id (any version, or URL) or page URL."""
        candidates = [identifier.strip()]
        found = arxiv_id(identifier)
        if found:
            candidates.append(found)
        if identifier.startswith(("http://", "https://")):
            candidates.append(canonical_url(identifier))
            # a page loaded before URLs had one canonical form may be stored under the old one
            candidates.append(legacy_canonical_url(identifier))
        for candidate in dict.fromkeys(candidates):
            doc = self.by_canonical_id(candidate)
            if doc is not None:
                return doc
        return None

    def iter_documents(
        self, *, min_rev: int | None = None, batch_size: int = 1000
    ) -> Iterator[list[Document]]:
        """All documents (or those changed after ``min_rev``) in id order, in batches."""
        last = 0
        while True:
            query = sa.select(documents).where(documents.c.id > last)
            if min_rev is not None:
                query = query.where(documents.c.rev > min_rev)
            query = query.order_by(documents.c.id).limit(batch_size)
            with self.engine.connect() as conn:
                batch = [self._doc(r) for r in conn.execute(query)]
            if not batch:
                return
            last = batch[-1].id or last
            yield batch

    def changed_ids(self, after_rev: int) -> np.ndarray:
        """Row ids whose content changed in a generation after ``after_rev``."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(documents.c.id).where(documents.c.rev > after_rev))
            return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def filter_ids(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kind: str | None = None,
        source: str | None = None,
        ids: Iterable[int] | None = None,
    ) -> np.ndarray | None:
        """Row ids that pass the filters, or None when no filter is set."""
        conds = []
        if since is not None:
            conds.append(documents.c.published >= naive_utc(since))
        if until is not None:
            conds.append(documents.c.published <= naive_utc(until))
        if kind:
            conds.append(documents.c.kind == kind)
        if source:
            conds.append(sa.func.lower(documents.c.source) == source.lower())
        if not conds and ids is None:
            return None
        query = sa.select(documents.c.id).where(*conds)
        with self.engine.connect() as conn:
            found = np.fromiter((r[0] for r in conn.execute(query)), dtype=np.int64)
        if ids is not None:
            found = np.intersect1d(found, np.fromiter(ids, dtype=np.int64))
        return found

    def stored(self, canonical_ids: Iterable[str]) -> dict[str, StoredDocument]:
        """The documents stored under these canonical ids (duplicates not included)."""
        found: dict[str, StoredDocument] = {}
        with self.engine.connect() as conn:
            for part in _chunks(list(dict.fromkeys(canonical_ids))):
                rows = conn.execute(
                    sa.select(
                        documents.c.canonical_id,
                        documents.c.id,
                        documents.c.content_hash,
                        documents.c.extra,
                    ).where(documents.c.canonical_id.in_(part))
                )
                for canonical_id, row_id, content_hash, extra in rows:
                    found[canonical_id] = StoredDocument(row_id, content_hash, dict(extra or {}))
        return found

    def recorded_duplicates(self, canonical_ids: Iterable[str]) -> set[str]:
        """Which of these canonical ids are recorded as duplicates of a stored document."""
        found: set[str] = set()
        with self.engine.connect() as conn:
            for part in _chunks(list(dict.fromkeys(canonical_ids))):
                rows = conn.execute(
                    sa.select(duplicates.c.canonical_id).where(duplicates.c.canonical_id.in_(part))
                )
                found.update(r[0] for r in rows)
        return found

    def record_duplicate(
        self,
        *,
        canonical_id: str,
        url: str,
        source: str,
        content_hash: str,
        original_id: int,
        now: datetime | None = None,
    ) -> bool:
        """Record ``canonical_id`` as a copy of document ``original_id`` (a near-identical
        text found by a crawler); False if this canonical id was recorded before."""
        with self.write() as conn:
            known = conn.execute(
                sa.select(duplicates.c.id).where(duplicates.c.canonical_id == canonical_id)
            ).first()
            if known:
                return False
            conn.execute(
                duplicates.insert().values(
                    canonical_id=canonical_id,
                    url=url,
                    source=source,
                    content_hash=content_hash,
                    original_id=original_id,
                    seen_at=naive_utc(now) if now else naive_now(),
                )
            )
        return True

    def duplicate_count(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(duplicates)).scalar_one()
            )

    # -- statistics ---------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts by kind, source and month of publication."""
        if self.engine.dialect.name == "sqlite":
            month = sa.func.strftime("%Y-%m", documents.c.published)
        else:
            month = sa.func.to_char(documents.c.published, "YYYY-MM")
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(documents)).scalar_one()

            def grouped(col: Any) -> dict[str, int]:
                rows = conn.execute(
                    sa.select(col, sa.func.count()).select_from(documents).group_by(col)
                )
                return {str(k) if k is not None else "unknown": int(n) for k, n in rows}

            by_kind = grouped(documents.c.kind)
            by_source = grouped(documents.c.source)
            by_month = dict(sorted(grouped(month.label("month")).items()))
        return {
            "documents": int(total),
            "by_kind": by_kind,
            "by_source": dict(sorted(by_source.items(), key=lambda kv: -kv[1])),
            "by_month": by_month,
            "duplicates": self.duplicate_count(),
            "generation": self.generation(),
        }
