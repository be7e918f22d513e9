"""The opportunity score of an innovation for a use case: is it worth a project lead's time?

Three parts, each in [0, 1], shown beside the total:

* **relevance** — the matcher's calibrated probability that the document fits the use case
  (1.0 when the team confirmed it; 0 when it is not matched to that use case);
* **maturity** — how ready it looks: ``0.6 × share of the maturity signals found`` (code
  released, data released, benchmarked, industry use) ``+ 0.2`` when arXiv holds a revised
  version (v2 or later) ``+ 0.2 × min(1, news items citing it / 2)``;
* **momentum** — whether its neighbourhood is growing: among the 50 stored documents closest
  in meaning, the weekly rate of those published in the last 4 weeks against the 8 weeks
  before, as ``recent / (recent + earlier)`` (0.5 = steady, towards 1 = growing, 0 = fading).
  "Now" is today, or the newest stored document when the store holds nothing newer (as for
  the trends).

``total = Σ weight × part / Σ weights``, with the weights of ``opportunity_weights``
(default relevance 0.5, maturity 0.3, momentum 0.2).

Example::

    score = opportunity(store, settings, "2504.01234", "health", "diagnosis_support")
    score.total, score.parts   # 0.71, {'relevance': 0.93, 'maturity': 0.52, 'momentum': 0.48}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import sqlalchemy as sa

from core.markup import counted, noun_for
from core.models import Document, naive_utc
from core.settings import Settings
from core.store import Store, documents
from index.indexer import index_folder, read_manifest
from index.matching import matches_for
from index.maturity import maturity
from index.story import citing_news
from index.trends import default_now
from index.vector_index import VectorIndex
from index.vectors import vectors_for

PARTS = ("relevance", "maturity", "momentum")
NEIGHBOURS = 50
RECENT_WEEKS = 4
EARLIER_WEEKS = 8
_VERSION = re.compile(r"^v(\d+)$")


@dataclass(slots=True)
class Opportunity:
    canonical_id: str
    sector: str
    use_case: str
    parts: dict[str, float]
    total: float
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        shown = ", ".join(f"{name} {self.parts[name]:.2f}" for name in PARTS)
        return f"opportunity {self.total:.2f} ({shown})"


def weights(settings: Settings) -> dict[str, float]:
    raw = dict(settings.opportunity_weights)
    unknown = set(raw) - set(PARTS)
    if unknown:
        raise ValueError(
            f"opportunity_weights has unknown {noun_for(len(unknown), 'part')} "
            f"{', '.join(sorted(unknown))}; "
            f"parts: {', '.join(PARTS)}"
        )
    out = {name: float(raw.get(name, 0.0)) for name in PARTS}
    if any(v < 0 for v in out.values()) or sum(out.values()) <= 0:
        raise ValueError("opportunity_weights must be non-negative and not all zero")
    return out


class Scorer:
    """Scores many (document, use case) pairs, loading the vector index once."""

    def __init__(self, store: Store, settings: Settings, *, now: datetime | None = None) -> None:
        self.store = store
        self.settings = settings
        self.weights = weights(settings)
        # like the trends: "now", or the newest document when the store holds nothing newer
        self.now = default_now(store, now).astimezone(UTC)
        folder = index_folder(settings, settings.model)
        self.manifest = read_manifest(folder)
        self.index = (
            VectorIndex.load(folder / self.manifest.vectors_file, nprobe=settings.ivf_nprobe)
            if self.manifest is not None and self.manifest.count
            else None
        )

    # -- the parts ---------------------------------------------------------------------------

    def relevance(self, doc: Document, use_case: str) -> tuple[float, str]:
        for match in matches_for(self.store, [doc.id])[doc.id]:
            if match.use_case == use_case:
                return round(float(match.score), 3), match.why
        return 0.0, "not matched to this use case"

    def maturity(self, doc: Document) -> tuple[float, str]:
        signals = maturity(doc)
        version = _VERSION.match(str((doc.extra or {}).get("version") or ""))
        revised = bool(version and int(version.group(1)) > 1)
        cited = citing_news(self.store, doc)
        value = 0.6 * signals.score + (0.2 if revised else 0.0) + 0.2 * min(1.0, len(cited) / 2)
        said = [signals.label] if signals.signals else []
        if revised:
            said.append(f"revised on arXiv ({version.group(0)})")
        if cited:
            said.append(f"cited by {counted(len(cited), 'news item')}")
        return round(min(1.0, value), 3), "; ".join(said) or "no maturity signal found"

    def momentum(self, doc: Document) -> tuple[float, str]:
        if self.index is None or self.manifest is None:
            return 0.5, "no index yet"
        found = vectors_for(
            self.store, self.manifest.model, self.manifest.dim, ids=np.array([doc.id])
        )[1]
        if not len(found):
            return 0.5, "not embedded yet"
        _, ids = self.index.search(np.asarray(found[:1], dtype=np.float32), NEIGHBOURS + 1)
        near = [int(i) for i in ids[0] if i >= 0 and int(i) != doc.id][:NEIGHBOURS]
        if not near:
            return 0.5, "no neighbours"
        with self.store.engine.connect() as conn:
            dates = [
                r[0]
                for r in conn.execute(
                    sa.select(documents.c.published).where(documents.c.id.in_(near))
                )
                if r[0] is not None
            ]
        end = naive_utc(self.now)
        recent_start = end - timedelta(weeks=RECENT_WEEKS)
        earlier_start = recent_start - timedelta(weeks=EARLIER_WEEKS)
        recent = sum(recent_start <= d <= end for d in dates)
        earlier = sum(earlier_start <= d < recent_start for d in dates)
        if recent + earlier == 0:
            return 0.5, "no close document in the last 12 weeks"
        rate_recent, rate_earlier = recent / RECENT_WEEKS, earlier / EARLIER_WEEKS
        value = rate_recent / (rate_recent + rate_earlier)
        return round(value, 3), (
            f"{counted(recent, 'close document')} in the last {RECENT_WEEKS} weeks, "
            f"{earlier} in the {EARLIER_WEEKS} before"
        )

    # -- the total ------------------------------------------------------------------------------

    def score(self, identifier: str, sector: str, use_case: str) -> Opportunity:
        doc = self.store.resolve(identifier)
        if doc is None or doc.id is None:
            raise KeyError(f"unknown document {identifier!r}")
        found = {
            "relevance": self.relevance(doc, use_case),
            "maturity": self.maturity(doc),
            "momentum": self.momentum(doc),
        }
        parts = {name: value for name, (value, _) in found.items()}
        total = sum(self.weights[n] * parts[n] for n in PARTS) / sum(self.weights.values())
        return Opportunity(
            canonical_id=doc.canonical_id,
            sector=sector,
            use_case=use_case,
            parts=parts,
            total=round(total, 3),
            notes={name: note for name, (_, note) in found.items()},
        )


def opportunity(
    store: Store,
    settings: Settings,
    identifier: str,
    sector: str,
    use_case: str,
    *,
    now: datetime | None = None,
) -> Opportunity:
    return Scorer(store, settings, now=now).score(identifier, sector, use_case)
