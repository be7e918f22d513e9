"""`veille search` and `veille similar`: what analysts type."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from core.models import KINDS, Hit
from index.matching import filter_ids, hit_annotations
from index.search import MODES, Searcher
from jobs.cli.common import AppContext, command_options, echo_json, friendly_errors, parse_date


def _json_hits(app: AppContext, hits: list[Hit]) -> list[dict]:
    notes = hit_annotations(app.store(), [h.doc_id for h in hits])
    return [{**h.to_json(), **notes[h.doc_id]} for h in hits]


def _print_hits(hits: list[Hit]) -> None:
    if not hits:
        click.echo("No results. Try other words, --mode keyword, or fewer filters.")
        return
    for rank, hit in enumerate(hits, 1):
        click.echo(f"{rank:>2}. {hit.title}")
        click.echo(
            f"    {hit.published or 'undated'} · {hit.kind} · {hit.source} · score {hit.score:.3f}"
            f" · id {hit.id}"
        )
        if hit.url:
            click.echo(f"    {hit.url}")
        click.echo(f"    {hit.snippet}")


@click.command("search")
@click.argument("query", required=False)
@click.option(
    "--queries",
    "queries_file",
    type=click.Path(dir_okay=False),
    help="Batch: one query a line; one JSON array of hits a line on output.",
)
@click.option(
    "--k", default=10, show_default=True, type=click.IntRange(1, 1000), help="Number of results."
)
@click.option("--since", callback=parse_date, help="Published on or after (YYYY-MM-DD).")
@click.option("--until", callback=parse_date, help="Published on or before (YYYY-MM-DD).")
@click.option("--kind", type=click.Choice(KINDS), help="Only papers or only news.")
@click.option("--source", help="Only this source (e.g. arxiv, starter).")
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
    if bool(query) == bool(queries_file):
        raise click.UsageError("give either a QUERY or --queries FILE")
    if since and until and since > until:
        raise click.BadParameter("--since is after --until", param_hint="--since")
    searcher = Searcher.open(app.settings(), store=app.store(), show_progress=True)
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
    if queries_file:
        path = Path(queries_file)
        if not path.is_file():
            raise click.ClickException(f"no such file: {path}")
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        queries = [q for q in lines if q]
        if not queries:
            raise click.ClickException(f"{path} holds no query (one query a line)")
        for hits in searcher.search_many(queries, **filters):
            if as_json:
                echo_json(_json_hits(app, hits))
            else:
                _print_hits(hits)
                click.echo()
        return
    hits = searcher.search(query or "", **filters)
    if as_json:
        echo_json(_json_hits(app, hits))
    else:
        _print_hits(hits)
    if searcher.indexes.manifest.count == 0:
        click.echo(
            "The index is empty: load documents (`veille load FILE`) or run `veille up`.", err=True
        )
        sys.exit(1)


@click.command("similar")
@click.argument("doc_id")
@click.option("--k", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of hits.")
@command_options
@click.pass_obj
@friendly_errors
def similar_cmd(app: AppContext, doc_id: str, k: int, as_json: bool) -> None:
    """The documents closest in meaning to DOC_ID (an arXiv id, URL or loaded id)."""
    searcher = Searcher.open(app.settings(), store=app.store(), show_progress=True)
    hits = searcher.similar(doc_id, k=k)
    if as_json:
        echo_json(_json_hits(app, hits))
    else:
        _print_hits(hits)


COMMANDS = [search_cmd, similar_cmd]
