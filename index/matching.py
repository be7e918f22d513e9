"""Which sector use cases and which techniques each document fits, and why.

A use-case match combines two pieces of evidence, both shown to the user:

* meaning: the cosine similarity between the document's stored vector and the use case's
  vector (its name, description and keywords, embedded once per taxonomy);
* words: the use case's keywords found in the document, and the sentence holding most of
  them (the passage shown as the reason).

``score = 0.7 * dense_part + 0.3 * keyword_part`` in [0, 1], where ``dense_part`` maps the
similarity linearly from ``DENSE_LOW`` (0) to ``DENSE_HIGH`` (1) and ``keyword_part`` grows
with the number of distinct keywords found. A document gets the use cases scoring at least
``MATCH_THRESHOLD`` (at most ``MAX_MATCHES``) and, when none of the use case's keywords occurs,
a similarity of at least ``DENSE_ALONE``; a document that fits nothing gets nothing.

Techniques are tagged from their aliases in the title and abstract (``LSTM`` -> rnn), with the
vector similarity to the technique's description as a weaker fallback. Alias matching forgives
a plural ``s`` (``LLMs``, ``diffusion models``) and looks inside hyphenated words
(``CNN-based``, ``GPT-4o``).

Document vectors come from the embeddings cache: matching never re-embeds a document, and a
changed taxonomy re-matches everything from the stored vectors.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa
from tqdm.auto import tqdm

from core.models import Document, Match, TechniqueTag
from core.settings import Settings
from core.store import Store, documents
from index.embedder import Embedder, get_embedder
from index.keyword import tokenize
from index.taxonomy import Taxonomy, UseCase, load_taxonomy

log = logging.getLogger(__name__)

DENSE_LOW = 0.15
DENSE_HIGH = 0.55
MATCH_THRESHOLD = 0.45
DENSE_ALONE = 0.55
MAX_MATCHES = 3
TECH_DENSE_THRESHOLD = 0.50
BATCH = 2000
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
_RAW_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")

_meta = sa.MetaData()
doc_matches = sa.Table(
    "doc_matches",
    _meta,
    sa.Column("doc_id", sa.Integer, primary_key=True),
    sa.Column("use_case", sa.String(100), primary_key=True),
    sa.Column("sector", sa.String(100), nullable=False, index=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("similarity", sa.Float, nullable=False),
    sa.Column("why", sa.Text, nullable=False),
    sa.Column("passage", sa.Text, nullable=False),
    sa.Column("terms", sa.JSON, nullable=False),
    # Monday of the publication week, as days since 1970-01-01: trends group on it directly.
    sa.Column("week", sa.Integer, nullable=True),
    sa.Index("ix_doc_matches_week", "week", "use_case"),
)
doc_techniques = sa.Table(
    "doc_techniques",
    _meta,
    sa.Column("doc_id", sa.Integer, primary_key=True),
    sa.Column("technique", sa.String(100), primary_key=True, index=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("why", sa.Text, nullable=False),
    sa.Column("week", sa.Integer, nullable=True),
    sa.Index("ix_doc_techniques_week", "week", "technique"),
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_checked: set[str] = set()


def week_number(published: datetime | None) -> int | None:
    """Days from 1970-01-01 to the Monday of the publication week (None when undated)."""
    if published is None:
        return None
    days = (published.astimezone(UTC) - _EPOCH).days
    return days - (days + 3) % 7  # 1970-01-01 was a Thursday


def ensure_tables(store: Store) -> None:
    """Create the match tables; derived data from an older layout is dropped and rebuilt."""
    if store.url in _checked:
        return
    inspector = sa.inspect(store.engine)
    if inspector.has_table("doc_matches"):
        columns = {c["name"] for c in inspector.get_columns("doc_matches")}
        if "week" not in columns:
            with store.write() as conn:
                _meta.drop_all(conn)
            store.set_meta("matching:taxonomy", "")
    store.ensure_tables(_meta)
    _checked.add(store.url)


# -- prepared taxonomy -------------------------------------------------------------------


@dataclass(slots=True)
class Prepared:
    """A taxonomy with its vectors and tokenised keywords, built once per process."""

    taxonomy: Taxonomy
    use_cases: tuple[UseCase, ...]
    use_case_vectors: np.ndarray
    use_case_phrases: list[list[tuple[str, tuple[str, ...]]]]
    technique_vectors: np.ndarray
    technique_phrases: list[list[tuple[str, tuple[str, ...]]]]


_prepared: dict[tuple[str, str], Prepared] = {}


def _phrases(words: Iterable[str], *, stem: bool) -> list[tuple[str, tuple[str, ...]]]:
    out = []
    for word in words:
        tokens = tuple(tokenize(word)) if stem else tuple(_RAW_TOKEN.findall(word.lower()))
        if tokens:
            out.append((word, tokens))
    return out


def _singular(token: str) -> str:
    """``llms`` -> ``llm``, ``networks`` -> ``network``; ``loss``, ``analysis`` kept as is."""
    if len(token) > 3 and token[-1] == "s" and token[-2] not in "siu":
        return token[:-1]
    return token


def technique_tokens(text: str) -> tuple[list[str], list[str]]:
    """Two token streams for alias matching: hyphenated words kept whole, and split apart."""
    whole = [_singular(t) for t in _RAW_TOKEN.findall(text.lower())]
    parts = [_singular(p) for t in whole for p in t.split("-") if p]
    return whole, parts


def _alias_phrases(aliases: Iterable[str]) -> list[tuple[str, tuple[str, ...]]]:
    return [
        (word, tuple(_singular(t) for t in tokens))
        for word, tokens in _phrases(aliases, stem=False)
    ]


def _has_alias(streams: tuple[list[str], list[str]], phrase: tuple[str, ...]) -> bool:
    return _find(streams[0], phrase) or _find(streams[1], phrase)


def prepare(taxonomy: Taxonomy, embedder: Embedder) -> Prepared:
    key = (embedder.name, taxonomy.fingerprint)
    if key not in _prepared:
        cases = taxonomy.use_cases
        _prepared[key] = Prepared(
            taxonomy=taxonomy,
            use_cases=cases,
            use_case_vectors=embedder.encode([uc.text for uc in cases]),
            use_case_phrases=[_phrases(uc.keywords, stem=True) for uc in cases],
            technique_vectors=embedder.encode([t.text for t in taxonomy.techniques]),
            technique_phrases=[_alias_phrases(t.aliases) for t in taxonomy.techniques],
        )
    return _prepared[key]


# -- scoring -----------------------------------------------------------------------------


def _find(tokens: Sequence[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    if n == 1:
        return phrase[0] in tokens
    first = phrase[0]
    return any(
        tokens[i] == first and tuple(tokens[i : i + n]) == phrase
        for i in range(len(tokens) - n + 1)
    )


def dense_part(similarity: float) -> float:
    return min(1.0, max(0.0, (similarity - DENSE_LOW) / (DENSE_HIGH - DENSE_LOW)))


def keyword_part(found: int) -> float:
    return 1.0 - math.exp(-found / 1.5)


def _best_passage(sentences: list[str], sentence_tokens: list[list[str]], phrases) -> str:
    best, best_hits = sentences[0] if sentences else "", -1
    for sentence, tokens in zip(sentences, sentence_tokens, strict=True):
        hits = sum(1 for _, p in phrases if _find(tokens, p))
        if hits > best_hits:
            best, best_hits = sentence, hits
    return best if len(best) <= 300 else best[:297].rsplit(" ", 1)[0] + "…"


def match_one(
    doc: Document, vector: np.ndarray, prepared: Prepared
) -> tuple[list[Match], list[TechniqueTag]]:
    """The use-case matches and technique tags of one document (pure, no I/O)."""
    sentences = [s for s in _SENTENCE.split(f"{doc.title}. {doc.text}") if s.strip()]
    sentence_tokens = [tokenize(s) for s in sentences]
    all_tokens = [t for ts in sentence_tokens for t in ts]
    token_set = set(all_tokens)
    sims = prepared.use_case_vectors @ vector
    matches = []
    for uc, sim, phrases in zip(
        prepared.use_cases, sims.tolist(), prepared.use_case_phrases, strict=True
    ):
        found = [word for word, p in phrases if (p[0] in token_set) and _find(all_tokens, p)]
        score = 0.7 * dense_part(sim) + 0.3 * keyword_part(len(found))
        # Without a single keyword of the use case, only a strong meaning match counts.
        if score < MATCH_THRESHOLD or (not found and sim < DENSE_ALONE):
            continue
        passage = _best_passage(sentences, sentence_tokens, phrases)
        terms = found[:6]
        shared = (
            f"shares the terms {', '.join(repr(t) for t in terms)}"
            if terms
            else "no keyword in common"
        )
        why = (
            f"Close in meaning to '{uc.name}' (similarity {sim:.2f}); {shared}; "
            f"best passage: \u201c{passage}\u201d"
        )
        matches.append(
            Match(
                doc_id=doc.id or 0,
                sector=uc.sector,
                use_case=uc.key,
                score=round(score, 4),
                why=why,
                passage=passage,
                terms=terms,
                similarity=round(float(sim), 4),
            )
        )
    matches.sort(key=lambda m: -m.score)
    matches = matches[:MAX_MATCHES]

    title_streams = technique_tokens(doc.title)
    text_streams = technique_tokens(doc.text)
    tech_sims = prepared.technique_vectors @ vector
    tags = []
    for tech, sim, phrases in zip(
        prepared.taxonomy.techniques, tech_sims.tolist(), prepared.technique_phrases, strict=True
    ):
        in_title = [w for w, p in phrases if _has_alias(title_streams, p)]
        in_text = [w for w, p in phrases if _has_alias(text_streams, p)]
        if in_title or in_text:
            score = min(1.0, 0.6 + 0.2 * len(in_title) + 0.1 * len(set(in_text) - set(in_title)))
            named = ", ".join(repr(w) for w in dict.fromkeys(in_title + in_text))
            why = f"mentions {named}"
        elif sim >= TECH_DENSE_THRESHOLD:
            score = 0.5 * dense_part(sim)
            why = f"close in meaning to '{tech.name}' (similarity {sim:.2f}), not named"
        else:
            continue
        tags.append(TechniqueTag(doc.id or 0, tech.key, round(score, 4), why))
    tags.sort(key=lambda t: -t.score)
    return matches, tags


# -- storage -----------------------------------------------------------------------------


def match_documents(
    store: Store,
    settings: Settings,
    *,
    doc_ids: Iterable[int] | None = None,
    embedder: Embedder | None = None,
    show_progress: bool = False,
) -> int:
    """Compute and store matches and technique tags; all documents when ``doc_ids`` is None.

    Only documents with a stored vector are matched. Returns how many were matched.
    """
    from index.indexer import _vectors_for  # noqa: PLC0415 - avoids an import cycle

    ensure_tables(store)
    embedder = embedder or get_embedder(settings.model, max_chars=settings.embed_max_chars)
    prepared = prepare(load_taxonomy(settings), embedder)
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
            ids, vectors = _vectors_for(store, embedder.name, embedder.dim, ids=np.array(part))
            docs = store.get_many(ids.tolist())
            match_rows, tag_rows = [], []
            for doc_id, vector in zip(ids.tolist(), vectors, strict=True):
                matches, tags = match_one(docs[doc_id], vector, prepared)
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


def refresh_matches(
    store: Store,
    settings: Settings,
    embedder: Embedder,
    *,
    generation: int,
    show_progress: bool = False,
) -> int:
    """Match what changed since the last matching run, or everything when the taxonomy
    changed; called by the indexer after each update."""
    taxonomy = load_taxonomy(settings)
    stamp = f"{embedder.name}|{taxonomy.fingerprint}"
    done_stamp = store.get_meta("matching:taxonomy")
    done_gen = store.get_meta("matching:generation")
    if done_stamp != stamp or done_gen is None:
        count = match_documents(store, settings, embedder=embedder, show_progress=show_progress)
    else:
        changed = store.changed_ids(int(done_gen))
        count = (
            match_documents(
                store,
                settings,
                doc_ids=changed.tolist(),
                embedder=embedder,
                show_progress=show_progress,
            )
            if len(changed)
            else 0
        )
    store.set_meta("matching:taxonomy", stamp)
    store.set_meta("matching:generation", str(generation))
    return count


# -- reading -----------------------------------------------------------------------------


def matches_for(store: Store, doc_ids: Iterable[int]) -> dict[int, list[Match]]:
    ensure_tables(store)
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
    ensure_tables(store)
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
    ensure_tables(store)
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
    ensure_tables(store)
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
                query = query.where(documents.c.published >= since.replace(tzinfo=None))
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
