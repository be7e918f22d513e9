"""Which sector use cases and techniques each document fits: the stored results, and the
queries over them.

This module owns the tables ``doc_matches`` and ``doc_techniques``. It runs the per-document
rules of index/match_rules.py over the vectors in the embeddings cache, in batches: matching
never re-embeds a document, and a changed taxonomy or a retrained matcher re-matches
everything from the stored vectors. The pipeline step (index/pipeline.py) calls
:func:`refresh_matches` after each index update; the dashboard, the digest, the API and the
CLI read the results through :func:`matches_for`, :func:`filter_ids` and
:func:`sector_overview`.

    count = match_documents(store, settings, doc_ids=[1, 2, 3])
    matches_for(store, [1])[1][0].why
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa
from tqdm.auto import tqdm

from core.models import Document, Match, TechniqueTag, naive_utc
from core.schema import doc_matches, doc_techniques
from core.settings import Settings
from core.store import Store, documents
from index.embedder import Embedder, get_embedder
from index.feedback import Verdict, verdicts
from index.learner import ensure_matcher, train_and_save
from index.match_rules import match_one, prepare
from index.matcher_model import MatcherModel
from index.taxonomy import UseCase, load_taxonomy
from index.vectors import vectors_for

log = logging.getLogger(__name__)

BATCH = 2000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def week_number(published: datetime | None) -> int | None:
    """Days from 1970-01-01 to the Monday of the publication week (None when undated)."""
    if published is None:
        return None
    days = (published.astimezone(UTC) - _EPOCH).days
    return days - (days + 3) % 7  # 1970-01-01 was a Thursday


# -- storage -----------------------------------------------------------------------------


def match_documents(
    store: Store,
    settings: Settings,
    *,
    doc_ids: Iterable[int] | None = None,
    embedder: Embedder | None = None,
    model: MatcherModel | None = None,
    show_progress: bool = False,
) -> int:
    """Compute and store matches and technique tags; all documents when ``doc_ids`` is None.

    Only documents with a stored vector are matched. Returns how many were matched.
    """
    embedder = embedder or get_embedder(settings.model, max_chars=settings.embed_max_chars)
    taxonomy = load_taxonomy(settings)
    prepared = prepare(taxonomy, embedder)
    model = model or ensure_matcher(store, settings, embedder, taxonomy)
    if doc_ids is None:
        with store.engine.connect() as conn:
            wanted = [
                r[0] for r in conn.execute(sa.select(documents.c.id).order_by(documents.c.id))
            ]
    else:
        wanted = sorted({int(i) for i in doc_ids})
    done = 0
    with tqdm(total=len(wanted), desc="Matching", unit="doc", disable=not show_progress) as bar:
        for start in range(0, len(wanted), BATCH):
            part = wanted[start : start + BATCH]
            ids, vectors = vectors_for(store, embedder.name, embedder.dim, ids=np.array(part))
            docs = store.get_many(ids.tolist())
            probabilities = model.predict(vectors)
            said: dict[str, dict[tuple[str, str | None], Verdict]] = {}
            for (canonical, sector_key, uc_key), verdict in verdicts(
                store, [d.canonical_id for d in docs.values()]
            ).items():
                said.setdefault(canonical, {})[(sector_key, uc_key)] = verdict
            match_rows, tag_rows = [], []
            for row, (doc_id, vector) in enumerate(zip(ids.tolist(), vectors, strict=True)):
                probs = {t: float(p[row]) for t, p in probabilities.items()}
                doc = docs[doc_id]
                matches, tags = match_one(
                    doc, vector, prepared, model, probs, said.get(doc.canonical_id)
                )
                week = week_number(docs[doc_id].published)
                match_rows += [
                    {
                        "doc_id": m.doc_id,
                        "use_case": m.use_case,
                        "sector": m.sector,
                        "score": m.score,
                        "similarity": m.similarity,
                        "why": m.why,
                        "passage": m.passage,
                        "terms": m.terms,
                        "week": week,
                    }
                    for m in matches
                ]
                tag_rows += [
                    {
                        "doc_id": t.doc_id,
                        "technique": t.technique,
                        "score": t.score,
                        "why": t.why,
                        "week": week,
                    }
                    for t in tags
                ]
            with store.write() as conn:
                conn.execute(doc_matches.delete().where(doc_matches.c.doc_id.in_(part)))
                conn.execute(doc_techniques.delete().where(doc_techniques.c.doc_id.in_(part)))
                if match_rows:
                    conn.execute(doc_matches.insert(), match_rows)
                if tag_rows:
                    conn.execute(doc_techniques.insert(), tag_rows)
            done += len(ids)
            bar.update(len(part))
    return done


def follow_answers(store: Store, settings: Settings, canonical_ids: Iterable[str]) -> int:
    """Match again the documents the team just answered about, so each follows its verdict
    at once: a "does not fit" takes it out of the sector, a "fits" puts it in, marked as
    confirmed. The matcher itself learns from the answers at its next training. A document
    with no stored vector yet follows its answers when it is indexed. Returns how many
    documents were matched again.

    The answers are already stored when this runs: if matching fails (a locked database, a
    matcher file being rewritten), the failure is logged and the caller goes on; the next
    training matches every document again with every answer."""
    ids = [d.id for d in store.stored(canonical_ids).values()]
    if not ids:
        return 0
    try:
        return match_documents(store, settings, doc_ids=ids)
    except Exception:  # noqa: BLE001 - the answer is kept; the next training applies it
        log.warning("answered documents not matched again yet: %s", ids[:5], exc_info=True)
        return 0


def refresh_matches(
    store: Store,
    settings: Settings,
    embedder: Embedder,
    *,
    generation: int,
    show_progress: bool = False,
) -> int:
    """Match what changed since the last matching run, or everything when the taxonomy
    changed; the pipeline step (index/pipeline.py) runs it after each index update."""
    taxonomy = load_taxonomy(settings)
    model = ensure_matcher(store, settings, embedder, taxonomy)
    stamp = f"{embedder.name}|{taxonomy.fingerprint}|{model.version}"
    done_stamp = store.get_meta("matching:taxonomy")
    done_gen = store.get_meta("matching:generation")
    if done_stamp != stamp or done_gen is None:
        count = match_documents(
            store, settings, embedder=embedder, model=model, show_progress=show_progress
        )
    else:
        changed = store.changed_ids(int(done_gen))
        count = (
            match_documents(
                store,
                settings,
                doc_ids=changed.tolist(),
                embedder=embedder,
                model=model,
                show_progress=show_progress,
            )
            if len(changed)
            else 0
        )
    store.set_meta("matching:taxonomy", stamp)
    store.set_meta("matching:generation", str(generation))
    return count


def retrain_matcher(
    store: Store,
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    show_progress: bool = False,
) -> tuple[MatcherModel, int]:
    """Train the learned matcher now (labels, answers, taxonomy), then re-match every
    document from its stored vector. Returns the model and how many documents were matched.
    Until the new matches are written, the earlier ones stay in place."""
    embedder = embedder or get_embedder(settings.model, max_chars=settings.embed_max_chars)
    taxonomy = load_taxonomy(settings)
    model = train_and_save(store, settings, embedder, taxonomy)
    count = match_documents(
        store, settings, embedder=embedder, model=model, show_progress=show_progress
    )
    store.set_meta("matching:taxonomy", f"{embedder.name}|{taxonomy.fingerprint}|{model.version}")
    store.set_meta("matching:generation", str(store.generation()))
    return model, count


# -- reading -----------------------------------------------------------------------------


def matches_for(store: Store, doc_ids: Iterable[int]) -> dict[int, list[Match]]:
    wanted = list({int(i) for i in doc_ids})
    out: dict[int, list[Match]] = {i: [] for i in wanted}
    with store.engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            rows = conn.execute(
                sa.select(doc_matches).where(doc_matches.c.doc_id.in_(wanted[start : start + 500]))
            )
            for r in rows:
                out[r.doc_id].append(
                    Match(
                        r.doc_id,
                        r.sector,
                        r.use_case,
                        r.score,
                        r.why,
                        r.passage,
                        list(r.terms),
                        r.similarity,
                    )
                )
    for items in out.values():
        items.sort(key=lambda m: -m.score)
    return out


def techniques_for(store: Store, doc_ids: Iterable[int]) -> dict[int, list[TechniqueTag]]:
    wanted = list({int(i) for i in doc_ids})
    out: dict[int, list[TechniqueTag]] = {i: [] for i in wanted}
    with store.engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            rows = conn.execute(
                sa.select(doc_techniques).where(
                    doc_techniques.c.doc_id.in_(wanted[start : start + 500])
                )
            )
            for r in rows:
                out[r.doc_id].append(TechniqueTag(r.doc_id, r.technique, r.score, r.why))
    for items in out.values():
        items.sort(key=lambda t: -t.score)
    return out


def filter_ids(
    store: Store,
    settings: Settings,
    *,
    sector: str | None = None,
    use_case: str | None = None,
    technique: str | None = None,
    min_score: float | None = None,
) -> np.ndarray | None:
    """Ids of documents matching the sector / use case / technique, or None without filter.

    Names are checked against the taxonomy (KeyError with the known keys otherwise).
    """
    if not (sector or use_case or technique):
        return None
    taxonomy = load_taxonomy(settings)
    result: set[int] | None = None
    with store.engine.connect() as conn:
        if sector or use_case:
            query = sa.select(doc_matches.c.doc_id)
            if sector:
                query = query.where(doc_matches.c.sector == taxonomy.sector(sector).key)
            if use_case:
                sector_key = taxonomy.sector(sector).key if sector else None
                query = query.where(
                    doc_matches.c.use_case == taxonomy.use_case(use_case, sector_key).key
                )
            if min_score is not None:
                query = query.where(doc_matches.c.score >= min_score)
            result = {r[0] for r in conn.execute(query)}
        if technique:
            query = sa.select(doc_techniques.c.doc_id).where(
                doc_techniques.c.technique == taxonomy.technique(technique).key
            )
            found = {r[0] for r in conn.execute(query)}
            result = found if result is None else result & found
    return np.fromiter(sorted(result or ()), dtype=np.int64)


@dataclass(slots=True)
class UseCaseView:
    use_case: UseCase
    items: list[tuple[Document, Match, list[TechniqueTag]]]


def sector_overview(
    store: Store,
    settings: Settings,
    sector_key: str,
    *,
    since: datetime | None = None,
    per_use_case: int = 10,
) -> list[UseCaseView]:
    """For each use case of a sector, its best-matching documents (newest first on ties)."""
    taxonomy = load_taxonomy(settings)
    sector = taxonomy.sector(sector_key)
    views = []
    with store.engine.connect() as conn:
        for uc in sector.use_cases:
            query = (
                sa.select(doc_matches.c.doc_id)
                .select_from(doc_matches.join(documents, documents.c.id == doc_matches.c.doc_id))
                .where(doc_matches.c.use_case == uc.key)
                .order_by(doc_matches.c.score.desc(), documents.c.published.desc())
                .limit(per_use_case)
            )
            if since is not None:
                query = query.where(documents.c.published >= naive_utc(since))
            ids = [r[0] for r in conn.execute(query)]
            docs = store.get_many(ids)
            matches = matches_for(store, ids)
            techs = techniques_for(store, ids)
            items = []
            for doc_id in ids:
                match = next(m for m in matches[doc_id] if m.use_case == uc.key)
                items.append((docs[doc_id], match, techs[doc_id]))
            views.append(UseCaseView(uc, items))
    return views


def hit_annotations(store: Store, doc_ids: Iterable[int]) -> dict[int, dict]:
    """The ``sectors`` and ``techniques`` keys added to JSON search hits."""
    ids = list(doc_ids)
    matches = matches_for(store, ids)
    techs = techniques_for(store, ids)
    return {
        i: {
            "sectors": [
                {"sector": m.sector, "use_case": m.use_case, "score": m.score, "why": m.why}
                for m in matches[i]
            ],
            "techniques": [t.technique for t in techs[i]],
        }
        for i in ids
    }
