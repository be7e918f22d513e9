"""`veille shortlist`: follow innovations per use case from "new" to "adopted" or "rejected"."""

from __future__ import annotations

from pathlib import Path

import click

from core.markup import counted
from jobs.cli.common import AppContext, command_options, echo_json, friendly_errors

STATUS_CHOICES = ("new", "to_evaluate", "pilot", "adopted", "rejected")


def _entry_of(app: AppContext, entry: str, use_case: str | None):
    """An entry by its number, or by document id and --use-case."""
    from index.shortlists import find_entry, get_entry  # noqa: PLC0415

    if entry.isdigit() and not use_case:
        return get_entry(app.store(), int(entry))
    if not use_case:
        raise click.UsageError("give the entry's number, or the document id with --use-case S/U")
    return find_entry(app.store(), app.settings(), entry, use_case)


def _said(entry) -> str:
    owner = f", owner {entry.owner}" if entry.owner else ""
    return f"#{entry.id} {entry.canonical_id} on {entry.target}: {entry.status_text}{owner}"


@click.group("shortlist")
def shortlist_group() -> None:
    """Shortlists per use case: add, list, move, note, owner, remove, log, export."""


@shortlist_group.command("add")
@click.argument("doc_id")
@click.option("--use-case", "use_case", required=True, help="SECTOR/USE_CASE (keys or names).")
@click.option("--owner", default="", help="Who follows it.")
@click.option("--note", default="", help="Why it is worth a look (up to 5,000 characters).")
@click.option("--by", default="", help="Your name, for the decision log.")
@command_options
@click.pass_obj
@friendly_errors
def add_cmd(app: AppContext, doc_id: str, use_case: str, owner: str, note: str, by: str) -> None:
    """Put DOC_ID (an arXiv id, URL or loaded id) on the shortlist of a use case."""
    from index.shortlists import add_entry  # noqa: PLC0415

    entry = add_entry(app.store(), app.settings(), doc_id, use_case, by=by, owner=owner, note=note)
    click.echo(f"Shortlisted: {_said(entry)}")


@shortlist_group.command("list")
@click.option("--sector", help="Only this sector.")
@click.option("--use-case", "use_case", help="Only this SECTOR/USE_CASE.")
@click.option("--status", type=click.Choice(STATUS_CHOICES), help="Only this status.")
@click.option("--removed", is_flag=True, help="Include removed entries.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (opportunity cards).")
@command_options
@click.pass_obj
@friendly_errors
def list_cmd(
    app: AppContext,
    sector: str | None,
    use_case: str | None,
    status: str | None,
    removed: bool,
    as_json: bool,
) -> None:
    """The shortlisted innovations with their status, owner and opportunity score."""
    from index.cards import make_cards  # noqa: PLC0415
    from index.shortlists import list_entries  # noqa: PLC0415
    from jobs.handouts import card_row  # noqa: PLC0415

    found = list_entries(
        app.store(),
        app.settings(),
        sector=sector,
        use_case=use_case,
        status=status,
        include_removed=removed,
    )
    cards = make_cards(app.store(), app.settings(), found)
    if as_json:
        echo_json([card_row(c) for c in cards])
        return
    if not cards:
        click.echo(
            "The shortlist is empty. Add an innovation with "
            "`veille shortlist add ID --use-case SECTOR/USE_CASE`."
        )
        return
    for card in cards:
        o = card.opportunity
        title = card.title if len(card.title) <= TITLE_WIDTH else card.title[: TITLE_WIDTH - 1]
        title = title if title == card.title else title.rstrip() + "…"
        click.echo(f"#{card.entry.id:<4} {card.entry.status_text:<14} {title}")
        removed = card.entry.removed
        click.echo(
            f"      {card.entry.target} · {o.text}"
            + (f" · owner {card.entry.owner}" if card.entry.owner else "")
            + (f" · REMOVED {removed:%Y-%m-%d} (add it again to restore)" if removed else "")
        )


TITLE_WIDTH = 70  # titles longer than this end in "…" in the text listing


@shortlist_group.command("move")
@click.argument("entry")
@click.argument("status", type=click.Choice(STATUS_CHOICES))
@click.option("--use-case", "use_case", help="SECTOR/USE_CASE, when ENTRY is a document id.")
@click.option("--reason", default="", help="Why, for the decision log.")
@click.option("--by", default="", help="Your name, for the decision log.")
@command_options
@click.pass_obj
@friendly_errors
def move_cmd(
    app: AppContext, entry: str, status: str, use_case: str | None, reason: str, by: str
) -> None:
    """Give ENTRY (its number, or a document id with --use-case) a new STATUS."""
    from index.shortlists import move_entry  # noqa: PLC0415

    found = _entry_of(app, entry, use_case)
    moved = move_entry(app.store(), app.settings(), found.id, status, by=by, reason=reason)
    click.echo(f"Moved: {_said(moved)}")


@shortlist_group.command("note")
@click.argument("entry")
@click.argument("text")
@click.option("--use-case", "use_case", help="SECTOR/USE_CASE, when ENTRY is a document id.")
@click.option("--by", default="", help="Your name, for the decision log.")
@command_options
@click.pass_obj
@friendly_errors
def note_cmd(app: AppContext, entry: str, text: str, use_case: str | None, by: str) -> None:
    """Add a note to ENTRY (up to 5,000 characters)."""
    from index.shortlists import add_note  # noqa: PLC0415

    found = _entry_of(app, entry, use_case)
    add_note(app.store(), found.id, text, by=by)
    click.echo(f"Note added to #{found.id}.")


@shortlist_group.command("owner")
@click.argument("entry")
@click.argument("name")
@click.option("--use-case", "use_case", help="SECTOR/USE_CASE, when ENTRY is a document id.")
@click.option("--by", default="", help="Your name, for the decision log.")
@command_options
@click.pass_obj
@friendly_errors
def owner_cmd(app: AppContext, entry: str, name: str, use_case: str | None, by: str) -> None:
    """Make NAME the owner of ENTRY ("" for nobody)."""
    from index.shortlists import set_owner  # noqa: PLC0415

    found = _entry_of(app, entry, use_case)
    click.echo(f"Owner set: {_said(set_owner(app.store(), found.id, name, by=by))}")


@shortlist_group.command("remove")
@click.argument("entry")
@click.option("--use-case", "use_case", help="SECTOR/USE_CASE, when ENTRY is a document id.")
@click.option("--reason", default="", help="Why, for the decision log.")
@click.option("--by", default="", help="Your name, for the decision log.")
@command_options
@click.pass_obj
@friendly_errors
def remove_cmd(app: AppContext, entry: str, use_case: str | None, reason: str, by: str) -> None:
    """Take ENTRY off the board (its decision log is kept; adding it again restores it)."""
    from index.shortlists import remove_entry  # noqa: PLC0415

    found = _entry_of(app, entry, use_case)
    remove_entry(app.store(), found.id, by=by, reason=reason)
    click.echo(f"Removed #{found.id} from {found.target}.")


@shortlist_group.command("log")
@click.argument("entry")
@click.option("--use-case", "use_case", help="SECTOR/USE_CASE, when ENTRY is a document id.")
@command_options
@click.pass_obj
@friendly_errors
def log_cmd(app: AppContext, entry: str, use_case: str | None) -> None:
    """The decision log of ENTRY: who changed what, when and why."""
    from index.shortlists import history  # noqa: PLC0415

    found = _entry_of(app, entry, use_case)
    click.echo(_said(found))
    for line in history(app.store(), found.id):
        click.echo(f"  {line.text}")


EXPORT_SUFFIXES = {".csv": "csv", ".md": "md", ".markdown": "md", ".txt": "md"}


def _format_of(out: str | None) -> str:
    """The export format OUT's name asks for: Markdown on the screen; a name whose ending says
    neither format is refused rather than given Markdown under a misleading name."""
    if not out:
        return "md"
    suffix = Path(out).suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise click.BadParameter(
            f"cannot tell the format of {out!r} from its name: Veille writes Markdown "
            "(.md) or CSV (.csv); name the file so, or choose with --format md|csv",
            param_hint="OUT",
        )
    return EXPORT_SUFFIXES[suffix]


@shortlist_group.command("export")
@click.argument("out", required=False, type=click.Path(dir_okay=False))
@click.option("--sector", help="Only this sector.")
@click.option("--use-case", "use_case", help="Only this SECTOR/USE_CASE.")
@click.option("--status", type=click.Choice(STATUS_CHOICES), help="Only this status.")
@click.option(
    "--format", "fmt", type=click.Choice(["md", "csv"]), default=None, help="Default: from OUT."
)
@command_options
@click.pass_obj
@friendly_errors
def export_cmd(
    app: AppContext,
    out: str | None,
    sector: str | None,
    use_case: str | None,
    status: str | None,
    fmt: str | None,
) -> None:
    """Opportunity cards for a workshop, as Markdown or CSV, to OUT (or the screen)."""
    from index.cards import make_cards  # noqa: PLC0415
    from index.shortlists import list_entries  # noqa: PLC0415
    from jobs.handouts import cards_csv, cards_markdown  # noqa: PLC0415

    fmt = fmt or _format_of(out)
    found = list_entries(
        app.store(), app.settings(), sector=sector, use_case=use_case, status=status
    )
    cards = make_cards(app.store(), app.settings(), found)
    title = "Opportunity cards" + (f": {use_case or sector}" if use_case or sector else "")
    text = cards_csv(cards) if fmt == "csv" else cards_markdown(cards, title=title)
    if out:
        Path(out).write_text(text, encoding="utf-8")
        click.echo(f"{counted(len(cards), 'card')} written to {out}")
    else:
        click.echo(text, nl=False)


COMMANDS = [shortlist_group]
