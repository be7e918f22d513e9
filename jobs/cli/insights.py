"""`veille sectors` and `veille trends`: what fits each use case, and what is growing."""

from __future__ import annotations

import textwrap
from datetime import datetime

import click

from core.markup import counted
from jobs.cli.common import (
    AppContext,
    command_options,
    echo_json,
    friendly_errors,
    name_column,
    parse_date,
)


@click.command("sectors")
@click.argument("sector", required=False)
@click.option(
    "--since", callback=parse_date, help="Only documents published on or after (YYYY-MM-DD)."
)
@click.option(
    "--k",
    "per_use_case",
    default=5,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Matches shown per use case.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@command_options
@click.pass_obj
@friendly_errors
def sectors_cmd(
    app: AppContext, sector: str | None, since: datetime | None, per_use_case: int, as_json: bool
) -> None:
    """The best matching innovations for each use case of SECTOR (all sectors if omitted).

    Each match says why it was made: how close in meaning, which terms are shared, and the
    passage of the document that fits best. SECTOR is a key or a name, in any case (by default
    finance, legal, retail, industry, health; or "Financial services", ...).
    """
    from index.lookup import sector_json
    from index.matching import sector_overview
    from index.search import published_str
    from index.taxonomy import load_taxonomy

    settings = app.settings()
    taxonomy = load_taxonomy(settings)
    keys = [taxonomy.sector(sector).key] if sector else [s.key for s in taxonomy.sectors]
    out = []
    for key in keys:
        views = sector_overview(app.store(), settings, key, since=since, per_use_case=per_use_case)
        out.append((taxonomy.sector(key), views))
    if as_json:
        echo_json([sector_json(s, views) for s, views in out])
        return
    for s, views in out:
        click.echo(f"\n== {s.name} ({s.key}) ==")
        for view in views:
            click.echo(f"\n  {view.use_case.name} [{view.use_case.key}]")
            if not view.items:
                click.echo("    no matching document yet")
            for doc, m, techs in view.items:
                tags = ", ".join(t.technique for t in techs[:4])
                click.echo(f"    {m.score:.2f}  {doc.title}  ({published_str(doc) or 'undated'})")
                click.echo(f"          why: {m.why}")
                click.echo(f"          {doc.url}" + (f"  · techniques: {tags}" if tags else ""))


@click.command("trends")
@click.option(
    "--weeks",
    default=12,
    show_default=True,
    type=click.IntRange(3, 520),
    help="Weeks in the window.",
)
@click.option(
    "--by", type=click.Choice(["technique", "use_case"]), default="technique", show_default=True
)
@click.option(
    "--until",
    callback=parse_date,
    help="End of the window (default: now, or the newest document if older).",
)
@click.option(
    "--themes/--no-themes", default=True, show_default=True, help="Also look for emerging themes."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@command_options
@click.pass_obj
@friendly_errors
def trends_cmd(
    app: AppContext, weeks: int, by: str, until: datetime | None, themes: bool, as_json: bool
) -> None:
    """Weekly counts per technique or use case, growth, bursts, and emerging themes.

    A burst means the last two weeks hold clearly more documents than the item's usual share
    predicts (Poisson test, p < 0.01, at least 3 documents). An emerging theme is a group of
    machine-learning documents whose share of the last 4 weeks grew within the same arXiv
    categories and news sources (at least 8 documents, 1.5x, p < 0.01); a category or source
    that just entered the crawl is listed as a crawl change instead.
    """
    from index.themes import running_text, touches_text
    from index.trends import COLUMNS_HELP, emerging_themes, trend_report

    store, settings = app.store(), app.settings()
    report = trend_report(store, settings, by=by, weeks=weeks, now=until)
    found = emerging_themes(store, settings, now=until) if themes else []
    if as_json:
        echo_json(
            {
                **report.to_json(),
                "themes": [theme_json(t) for t in found],
                "themes_note": getattr(found, "note", ""),
                "crawl_changes": getattr(found, "crawl_changes", []),
            }
        )
        return
    partial = ""
    if report.last_week_days < 7:
        days = counted(report.last_week_days, "day")
        partial = (
            f"; the last week holds {days}, up to {report.last_day}, the newest publication "
            "date stored"
            if report.ends_at_newest
            else f"; the last week holds {days} so far"
        )
    click.echo(
        f"Weeks {report.weeks[0]} to {report.weeks[-1]}: {counted(sum(report.totals), 'document')}"
        + partial
    )
    labels = [item.label for item in report.items]
    width, fit = name_column(labels)
    click.echo(f"{'':<{width}} {'total':>6} {'growth':>7} {'last 2 wk':>9} {'expected':>8}  flag")
    for item, label in zip(report.items, labels, strict=True):
        flag = "BURST" if item.burst else ("new" if item.new else "")
        numbers = f"{item.total:>6} {item.growth:>+7.0%} {item.recent:>9} {item.expected:>8.1f}"
        click.echo(f"{fit(label)} {numbers}  {flag}")
    click.echo(textwrap.fill(f"({COLUMNS_HELP.replace('last 2 weeks', 'last 2 wk')})", 100))
    if themes:
        click.echo(
            "\nEmerging themes (machine-learning topics whose share grew in the last 4 weeks):"
        )
        if not found:
            click.echo(f"  none. {getattr(found, 'note', '')}".rstrip())
        for theme in found:
            running = running_text(theme)
            click.echo(f"  {theme.heading}  [{theme.theme_id}{', ' + running if running else ''}]")
            click.echo(f"    {theme.summary}")
            if theme.sectors:
                click.echo(f"    touches: {touches_text(theme)}")
            for doc in theme.documents:
                click.echo(f"    - {doc.title}")
        for change in getattr(found, "crawl_changes", []):
            click.echo(f"  crawl change, not a theme: {change}")


def theme_json(theme) -> dict:
    """One emerging theme as JSON (the fields every caller had, then the newer ones)."""
    return {
        "label": theme.label,
        "keywords": theme.keywords,
        "terms": theme.terms,
        "size": theme.size,
        "earlier": theme.earlier,
        "growth": theme.growth,
        "documents": [{"id": d.canonical_id, "title": d.title} for d in theme.documents],
        "theme_id": theme.theme_id,
        "new": theme.new,
        "summary": theme.summary,
        "expected": theme.expected,
        "p_value": theme.p_value,
        "recent_share": theme.recent_share,
        "earlier_share": theme.earlier_share,
        "weeks_running": theme.weeks_running,
        "sectors": [
            {"sector": s.sector, "use_case": s.use_case, "name": s.name, "documents": s.documents}
            for s in theme.sectors
        ],
    }


COMMANDS = [sectors_cmd, trends_cmd]
