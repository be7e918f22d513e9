"""Index, then match: the step every writer runs after documents change.

Indexing (index/indexer.py) embeds new documents and brings the FAISS and keyword files in
step with the store; matching (index/matching.py) then assigns sectors and techniques from
the vectors indexing just stored. They are two modules so that neither imports the other:
this module is the one place that runs them in order, for `veille index`, `veille load
--index`, the crawl commands, `veille up`, the scheduler's re-index job, and a search that
finds its index behind the store.

    report = index_and_match(store, settings, show_progress=True)
    report.embedded, report.indexed, report.matched
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict

from core.settings import Settings
from core.store import Store
from index.embedder import Embedder, get_embedder
from index.indexer import (
    IndexReport,
    LoadedIndexes,
    index_folder,
    open_indexes,
    read_manifest,
    update_index,
)
from index.matching import refresh_matches

log = logging.getLogger(__name__)


def index_and_match(
    store: Store,
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    show_progress: bool = False,
    force_rebuild: bool = False,
) -> IndexReport:
    """Embed and index what changed, then match it (or everything, when the taxonomy or the
    matcher changed). Matching reuses the stored vectors: nothing is embedded twice.

    Progress bars (embedding, then matching) show when ``show_progress`` is set.
    """
    started = time.perf_counter()
    embedder = embedder or get_embedder(settings.model, max_chars=settings.embed_max_chars)
    report = update_index(
        store,
        settings,
        embedder=embedder,
        show_progress=show_progress,
        force_rebuild=force_rebuild,
    )
    report.matched = refresh_matches(
        store, settings, embedder, generation=report.generation, show_progress=show_progress
    )
    report.seconds = time.perf_counter() - started
    log.info("index and match: %s", asdict(report))
    return report


def load_indexes(
    store: Store, settings: Settings, embedder: Embedder, *, show_progress: bool = False
) -> LoadedIndexes:
    """The current indexes, indexed and matched first when missing or behind the store."""
    manifest = read_manifest(index_folder(settings, embedder.name))
    if manifest is None or manifest.generation != store.generation():
        if manifest is None:
            log.info("no index for %s yet: building it", embedder.name)
        else:
            log.info("index is behind the store: updating it")
        index_and_match(store, settings, embedder=embedder, show_progress=show_progress)
    return open_indexes(store, settings, embedder)
