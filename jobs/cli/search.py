"""`veille search` and `veille similar`: what analysts type."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from core.markup import counted
from core.models import KINDS
from jobs.cli import remote
from jobs.cli.common import AppContext, command_options, echo_json, friendly_errors, parse_date

if TYPE_CHECKING:
    from index.search import Searcher

# The same as index.search.MODES (a test checks), spelled here so that `--help` loads no index.
MODES = ("hybrid", "dense", "keyword")


def _json_hits(app: AppContext, hits: list) -> list[dict]:
    from index.matching import hit_annotations  # noqa: PLC0415

    notes = hit_annotations(app.store(), [h.doc_id for h in hits])
    return [{**h.to_json(), **notes[h.doc_id]} for h in hits]


def _print_hits(hits: list[dict[str, Any]], *, score: str = "query match") -> None:
    if not hits:
        click.echo("No results. Try other words, --mode keyword, or fewer filters.")
        return
    from index.search import weak_match_note  # noqa: PLC0415

    note = weak_match_note([hit.get("similarity") for hit in hits]) if score != "similarity" else ""
    if note:
        click.echo(f"Note: {note}")
    for rank, hit in enumerate(hits, 1):
        click.echo(f"{rank:>2}. {hit['title']}")
        click.echo(
            f"    {hit['published'] or 'undated'} · {hit['kind']} · {hit['source']} · "
            f"{score} {hit['score']:.3f} · id {hit['id']}"
        )
        if hit["url"]:
            click.echo(f"    {hit['url']}")
        click.echo(f"    {hit['snippet']}")


def _open_searcher(app: AppContext, *, quiet: bool = False) -> Searcher:
    """Load the model and indexes here, saying how long it took (a running API avoids it)."""
    from index.search import Searcher  # noqa: PLC0415

    started = time.perf_counter()
    searcher = Searcher.open(app.settings(), store=app.store(), show_progress=True)
    if quiet:  # JSON output stays JSON only, even with stderr merged
        return searcher
    click.echo(
        f"(model and indexes loaded in {time.perf_counter() - started:.1f} s; with `veille api` "
        "running, set VEILLE_API_URL and VEILLE_API_KEY to skip this)",
        err=True,
    )
    return searcher


def _stored_source(app: AppContext, source: str | None) -> str | None:
    """SOURCE as stored (any case); a source no document has is refused, naming the ones
    that exist, instead of an empty result that looks like "nothing matches"."""
    if source is None:
        return None
    known = app.store().sources()
    same = [k for k in known if k.casefold() == source.strip().casefold()]
    if len(same) == 1:
        return same[0]
    if source in known:
        return source
    raise click.BadParameter(
        f"no stored document has the source {source!r}; sources: {', '.join(known)}",
        param_hint="--source",
    )


def _read_queries(queries_file: str) -> list[str]:
    path = Path(queries_file)
    if not path.is_file():
        raise click.ClickException(f"no such file: {path}")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    queries = [q for q in lines if q]
    if not queries:
        raise click.ClickException(f"{path} holds no query (one query a line)")
    return queries


def _remote_search(queries: list[str], params: dict[str, Any]) -> list[list[dict]]:
    """Ask the running API, page by page when k is larger than one page."""
    out = []
    for query in queries:
        hits: list[dict] = []
        offset = 0
        while len(hits) < params["k"]:
            try:
                page = remote.get(
                    "/v1/search",
                    {
                        **params,
                        "q": query,
                        "k": min(100, params["k"] - len(hits)),
                        "offset": offset,
                    },
                )
            except remote.RemoteError as exc:
                raise click.ClickException(str(exc)) from None
            hits.extend(page["hits"])
            if page["next_offset"] is None:
                break
            offset = page["next_offset"]
        out.append(hits)
    return out


@click.command("search")
@click.argument("query", required=False)
@click.option(
    "--queries",
    "queries_file",
    type=click.Path(dir_okay=False),
    help="Batch: one query a line (blank lines skipped). With --json, one JSON array of hits "
    "a line, in the order of the queries; without it, each query's hits under its heading.",
)
@click.option(
    "--k", default=10, show_default=True, type=click.IntRange(1, 1000), help="Number of results."
)
@click.option("--since", callback=parse_date, help="Published on or after (YYYY-MM-DD).")
@click.option("--until", callback=parse_date, help="Published on or before (YYYY-MM-DD).")
@click.option("--kind", type=click.Choice(KINDS), help="Only papers or only news.")
@click.option(
    "--source",
    help='Only this source: arxiv, or a news source such as "OpenAI News" (`veille stats` '
    "lists them).",
)
@click.option("--sector", help="Only documents matching this sector (e.g. finance, health).")
@click.option(
    "--use-case", "use_case", help='Only this use case (key or name, e.g. "fraud detection").'
)
@click.option("--technique", help="Only documents using this technique (e.g. cnn, rnn, gnn).")
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="hybrid",
    show_default=True,
    help="dense = meaning, keyword = BM25, hybrid = both fused.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of hits.")
@command_options
@click.pass_obj
@friendly_errors
def search_cmd(
    app: AppContext,
    query: str | None,
    queries_file: str | None,
    k: int,
    since: datetime | None,
    until: datetime | None,
    kind: str | None,
    source: str | None,
    sector: str | None,
    use_case: str | None,
    technique: str | None,
    mode: str,
    as_json: bool,
) -> None:
    """Search the indexed documents by meaning and keywords.

    Example: veille search "LSTM remaining useful life" --since 2025-06-01 --k 5
    """
    if query is not None and not query.strip():
        raise click.BadParameter("it is empty or only spaces", param_hint="QUERY")
    if bool(query) == bool(queries_file):
        raise click.UsageError("give either a QUERY or --queries FILE")
    if since and until and since > until:
        raise click.BadParameter("--since is after --until", param_hint="--since")
    queries = _read_queries(queries_file) if queries_file else [query or ""]
    if remote.api_url():
        params = {
            "k": k,
            "mode": mode,
            "since": since.date().isoformat() if since else None,
            "until": until.date().isoformat() if until else None,
            "kind": kind,
            "source": source,
            "sector": sector,
            "use_case": use_case,
            "technique": technique,
        }
        for asked, hits in zip(queries, _remote_search(queries, params), strict=True):
            if as_json:
                echo_json(hits)
            else:
                if queries_file:
                    click.echo(f"## {asked}")
                _print_hits(hits, score="keyword score" if mode == "keyword" else "query match")
                if queries_file:
                    click.echo()
        return
    from index.matching import filter_ids  # noqa: PLC0415

    if app.store().count() == 0:  # no need to load the model to know
        click.echo(
            "Nothing is stored yet: load documents (`veille load FILE`), or run `veille up` "
            "for the starter corpus.",
            err=True,
        )
        sys.exit(1)
    source = _stored_source(app, source)
    searcher = _open_searcher(app, quiet=as_json)
    restrict = filter_ids(
        app.store(), app.settings(), sector=sector, use_case=use_case, technique=technique
    )
    filters = {
        "k": k,
        "since": since,
        "until": until,
        "kind": kind,
        "source": source,
        "mode": mode,
        "ids": restrict,
    }
    if searcher.indexes.manifest.count == 0:  # said instead of "No results. Try other words"
        click.echo(
            f"The index is empty ({counted(app.store().count(), 'document')} stored): load "
            "documents (`veille load FILE`) and index them (`veille index`), or run `veille up`.",
            err=True,
        )
        sys.exit(1)
    for asked, hits in zip(queries, searcher.search_many(queries, **filters), strict=True):
        if as_json:
            echo_json(_json_hits(app, hits))
        else:
            if queries_file:
                click.echo(f"## {asked}")
            _print_hits(
                [h.to_json() for h in hits],
                score="keyword score" if mode == "keyword" else "query match",
            )
            if queries_file:
                click.echo()


@click.command("similar")
@click.argument("doc_id")
@click.option(
    "--k",
    default=10,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Number of documents (through the API, at most its api_max_k).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of hits.")
@command_options
@click.pass_obj
@friendly_errors
def similar_cmd(app: AppContext, doc_id: str, k: int, as_json: bool) -> None:
    """The documents closest in meaning to DOC_ID (an arXiv id, URL or loaded id)."""
    if remote.api_url():
        from urllib.parse import quote  # noqa: PLC0415

        try:
            hits = remote.get(f"/v1/documents/{quote(doc_id, safe='')}/similar", {"k": k})["hits"]
        except remote.RemoteError as exc:
            raise click.ClickException(str(exc)) from None
    else:
        found = _open_searcher(app, quiet=as_json).similar(doc_id, k=k)
        hits = _json_hits(app, found) if as_json else [h.to_json() for h in found]
    if as_json:
        echo_json(hits)
    else:
        _print_hits(hits, score="similarity")


COMMANDS = [search_cmd, similar_cmd]
