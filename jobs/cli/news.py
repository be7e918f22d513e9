"""`veille crawl news` and `veille sources`: the news crawler and its list of feeds."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from crawler.news_crawl import NewsCrawlReport

from core.markup import counted
from jobs.cli.common import AppContext, command_options, echo_json, friendly_errors
from jobs.cli.crawl import crawl


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    seconds = max(0, int((now - when).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{when:%Y-%m-%d %H:%M} UTC ({seconds // size} {unit} ago)"
    return f"{when:%Y-%m-%d %H:%M} UTC (just now)"


def _report_lines(report: NewsCrawlReport) -> list[str]:
    lines = []
    for run in report.runs:
        name = run.source.split(":", 1)[1]
        state = report.states.get(name)
        if run.status == "error":
            lines.append(f"  {name}: FAILED — {run.last_error}")
        elif run.status == "partial":
            lines.append(
                f"  {name}: stopped midway — {run.new} new, {run.updated} updated stored "
                f"({run.last_error})"
            )
        elif state is not None and state.status == "not_modified":
            lines.append(f"  {name}: feed unchanged (HTTP 304), nothing to do")
        else:
            known = run.fetched - run.new - run.updated
            line = f"  {name}: {counted(run.fetched, 'item')} in the feed — {run.new} new, "
            line += f"{run.updated} updated, {known} already known or duplicate"
            if run.errors:
                line += f"; {counted(run.errors, 'page')} not read ({run.last_error})"
            lines.append(line)
    for dead in report.dead_hosts.values():  # one line per host, the details in the log
        skipped = f"; {counted(dead.skipped, 'request')} to it not made" if dead.skipped else ""
        lines.append(
            f"  host {dead.host}: not answering ({dead.reason or 'connection failed'}){skipped}"
            " — its items keep their feed summary"
        )
    if report.dead_hosts or any(r.status != "ok" or r.errors for r in report.runs):
        lines.append(f"  Full log: {report.log_file}")
    return lines


@click.command("news")
@click.option("--source", "source", metavar="NAME", help="Crawl only this source (by name).")
@click.option(
    "--index/--no-index",
    "then_index",
    default=True,
    show_default=True,
    help="Index the new items afterwards.",
)
@command_options
@click.pass_obj
@friendly_errors
def crawl_news_cmd(app: AppContext, source: str | None, then_index: bool) -> None:
    """Read the news feeds (all enabled sources, or --source) and their article pages.

    Polite by default: robots.txt obeyed, AutoThrottle, at most 2 requests at a time per site,
    conditional requests (an unchanged feed costs one HTTP 304). A failing source is reported
    and the others are crawled all the same. See `veille sources` for the list.
    """
    from crawler.news_crawl import crawl_news
    from index.pipeline import index_and_match

    store = app.store()
    settings = app.settings()
    report = crawl_news(store, settings, source=source, show_progress=True)
    click.echo(
        f"News: {counted(len(report.runs), 'source')} in {report.seconds:.1f} s — "
        f"{report.new} new, {report.updated} updated"
    )
    for line in _report_lines(report):
        click.echo(line)
    if then_index and (report.new or report.updated):
        indexed = index_and_match(store, settings, show_progress=True)
        click.echo(
            f"Indexed: {counted(indexed.indexed, 'document')} searchable "
            f"({indexed.embedded} embedded now)."
        )
    if report.failing:
        click.echo(
            f"Failing: {', '.join(report.failing)} (see `veille sources`; the others were kept)",
            err=True,
        )
        if len(report.failing) == len(report.runs):
            sys.exit(1)


@click.group("sources", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per source.")
@command_options
@click.pass_context
@friendly_errors
def sources(ctx: click.Context, as_json: bool) -> None:
    """List the news sources: last crawl, items new/updated, last error, enabled or failing.

    Sources come from the shipped default list, the [[news_sources]] of veille.toml and
    `veille sources add`. A source can be switched off with `veille sources disable NAME`
    (or `enabled = false` in the file).
    """
    if ctx.invoked_subcommand is not None:
        return
    from crawler.news_health import source_alerts
    from crawler.news_sources import all_sources, feed_states, status_text

    app: AppContext = ctx.ensure_object(AppContext)
    store, settings = app.store(), app.settings()
    states = feed_states(store)
    listed = all_sources(store, settings)
    now = datetime.now(UTC)
    alerts = {a.source: a for a in source_alerts(store, settings, now=now)}
    if as_json:
        for src in listed:
            state = states.get(src.name)
            data = src.to_json()
            data["status"] = status_text(src, state)
            alert = alerts.get(src.name)
            data["alert"] = alert.kind if alert else ""
            data["alert_message"] = alert.message if alert else ""
            if state is not None:
                data.update(
                    last_crawl=state.last_crawl,
                    last_success=state.last_success,
                    new=state.new,
                    updated=state.updated,
                    last_error=state.last_error,
                    failing=state.failing,
                )
            echo_json(data)
        return
    if not listed:
        click.echo("No news source. Add one with `veille sources add NAME FEED_URL`.")
        return
    if alerts:
        click.echo(
            f"{counted(len(alerts), 'source')} {'needs' if len(alerts) == 1 else 'need'} a look:"
        )
        for alert in alerts.values():
            click.echo(f"  ! {alert.message}")
        click.echo("")
    for src in listed:
        state = states.get(src.name)
        flag = f"  ({alerts[src.name].kind.upper()})" if src.name in alerts else ""
        click.echo(f"{src.name}  [{status_text(src, state)}]{flag}")
        pages = "article pages followed" if src.follow_pages else "feed only"
        click.echo(f"    feed: {src.feed_url}  ({pages}; from {src.origin})")
        if state is not None and state.last_crawl is not None:
            click.echo(
                f"    last crawl: {_ago(state.last_crawl, now)} — "
                f"{state.new} new, {state.updated} updated"
            )
        if state is not None and state.last_error:
            click.echo(f"    last error: {state.last_error}")


@sources.command("add")
@click.argument("name")
@click.argument("feed_url")
@click.option(
    "--follow-pages/--no-follow-pages",
    default=None,
    help="Fetch each item's article page for its full text (default: news_follow_pages).",
)
@command_options
@click.pass_obj
@friendly_errors
def sources_add(app: AppContext, name: str, feed_url: str, follow_pages: bool | None) -> None:
    """Add a news source (an RSS or Atom feed URL), kept in the database."""
    from crawler.news_sources import add_source

    src = add_source(app.store(), app.settings(), name, feed_url, follow_pages=follow_pages)
    click.echo(f"Added {src.name}: {src.feed_url}. Crawl it with `veille crawl news`.")


@sources.command("disable")
@click.argument("name")
@command_options
@click.pass_obj
@friendly_errors
def sources_disable(app: AppContext, name: str) -> None:
    """Stop crawling a source (it stays listed; `enable` turns it back on)."""
    from crawler.news_sources import set_enabled

    src = set_enabled(app.store(), app.settings(), name, False)
    click.echo(f"Disabled {src.name}.")


@sources.command("enable")
@click.argument("name")
@command_options
@click.pass_obj
@friendly_errors
def sources_enable(app: AppContext, name: str) -> None:
    """Crawl a source again."""
    from crawler.news_sources import set_enabled

    src = set_enabled(app.store(), app.settings(), name, True)
    click.echo(f"Enabled {src.name}.")


crawl.add_command(crawl_news_cmd)
COMMANDS = [sources]
