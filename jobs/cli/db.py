"""`veille db`: where the database schema stands, and bringing it to the newest revision.

Every command that opens the database upgrades it already; these two say what happens.
"""

from __future__ import annotations

import click

from jobs.cli.common import AppContext, command_options, echo_json, friendly_errors


@click.group("db")
def db_cmd() -> None:
    """The database schema: `veille db current`, `veille db upgrade`."""


@db_cmd.command("current")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@command_options
@click.pass_obj
@friendly_errors
def current_cmd(app: AppContext, as_json: bool) -> None:
    """Show the schema revision of the database and the newest this Veille knows (changes
    nothing)."""
    from core.db import make_engine, safe_url, sqlite_path
    from core.migrations import state

    settings = app.settings()
    url = settings.sqlalchemy_url
    path = sqlite_path(url)
    if path is not None and not path.exists():  # say so, and leave no empty file behind
        if as_json:
            echo_json({"database": safe_url(url), "revision": None, "exists": False})
        else:
            click.echo(f"{safe_url(url)}: no database there yet (`veille db upgrade` creates it)")
        return
    engine = make_engine(url, busy_timeout=settings.db_busy_timeout)
    try:
        with engine.connect() as conn:
            found = state(conn)
    finally:
        engine.dispose()
    if as_json:
        echo_json(
            {
                "database": safe_url(settings.sqlalchemy_url),
                "revision": found.revision,
                "head": found.head,
                "current": found.current,
                "previous_release": found.previous_release,
            }
        )
        return
    click.echo(f"{safe_url(settings.sqlalchemy_url)}: {found.text()}")


@db_cmd.command("upgrade")
@command_options
@click.pass_obj
@friendly_errors
def upgrade_cmd(app: AppContext) -> None:
    """Bring the database schema to the newest revision (data kept). Opening the database
    does it too; this says what was done."""
    store = app.store()  # opening upgrades the schema, under the write lock
    if store.migrated is None:
        from core.migrations import head

        click.echo(f"{store.display_url}: already at revision {head()} (the newest)")
        return
    before, after = store.migrated
    click.echo(f"{store.display_url}: upgraded from {before or 'no revision'} to {after}")


COMMANDS = [db_cmd]
