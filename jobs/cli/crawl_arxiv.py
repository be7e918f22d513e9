"""`veille crawl arxiv`: collect new papers from the arXiv API, then index them."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from core.markup import counted
from core.models import CrawlRun
from jobs.cli.common import AppContext, command_options, friendly_errors, parse_date
from jobs.cli.crawl import crawl


def _summary(run: CrawlRun) -> str:
    return (
        f"arXiv: {counted(run.pages, 'page')}, {counted(run.fetched, 'paper')} read — "
        f"{run.new} new, {run.updated} updated, {run.fetched - run.new - run.updated} already known"
    )


@crawl.command("arxiv")
@click.option(
    "--since",
    callback=parse_date,
    help="Backfill from this date (YYYY-MM-DD) instead of the last crawl.",
)
@click.option(
    "--max", "max_results", type=click.IntRange(1), help="At most this many papers per query."
)
@click.option(
    "--index/--no-index",
    "then_index",
    default=True,
    show_default=True,
    help="Index the new papers afterwards.",
)
@command_options
@click.pass_obj
@friendly_errors
def crawl_arxiv_cmd(
    app: AppContext, since: datetime | None, max_results: int | None, then_index: bool
) -> None:
    """Fetch new papers for the configured categories and queries (settings: [arxiv]).

    Polite by default: one request every 3 seconds, one connection, retries with backoff.
    A daily run fetches only what changed since the previous one; an interrupted backfill
    resumes where it stopped.
    """
    from crawler.arxiv_client import ArxivFetchError
    from crawler.arxiv_crawl import crawl_arxiv
    from crawler.arxiv_parse import MalformedPage
    from index.pipeline import index_and_match

    store = app.store()
    settings = app.settings()
    try:
        run = crawl_arxiv(store, settings, since=since, max_results=max_results, show_progress=True)
    except (ArxivFetchError, MalformedPage) as exc:
        run = store.get_run(exc.run_id) if getattr(exc, "run_id", 0) else None
        run = run or store.recent_runs(1, source="arxiv")[0]
        click.echo(_summary(run) + " (kept)", err=True)
        click.echo(f"Error: {exc}", err=True)
        if then_index and run.new + run.updated:
            index_and_match(store, settings, show_progress=True)
        sys.exit(1)
    click.echo(_summary(run))
    if then_index and (run.new or run.updated):
        report = index_and_match(store, settings, show_progress=True)
        click.echo(
            f"Indexed: {counted(report.indexed, 'document')} searchable "
            f"({report.embedded} embedded now)."
        )


COMMANDS: list = []
