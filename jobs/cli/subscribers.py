"""`veille subscribers`: who receives the weekly digest, with consent, export and erasure."""

from __future__ import annotations

import click

from core.markup import counted
from jobs.cli.common import AppContext, command_options, echo_json, friendly_errors


@click.group("subscribers")
def subscribers_cmd() -> None:
    """Digest subscribers: add (with consent), list, remove (erase), export (GDPR)."""


@subscribers_cmd.command("add")
@click.argument("email")
@click.option("--sectors", required=True, help="Comma-separated sector keys, e.g. finance,health.")
@click.option("--techniques", default="", help="Optional comma-separated technique keys.")
@click.option(
    "--consent",
    is_flag=True,
    help="The person agreed to receive the digest (required; the time is recorded).",
)
@click.option("--source", default="cli", show_default=True, help="Where consent was given.")
@command_options
@click.pass_obj
@friendly_errors
def add_cmd(
    app: AppContext, email: str, sectors: str, techniques: str, consent: bool, source: str
) -> None:
    """Subscribe EMAIL to the weekly digest for some sectors (and techniques)."""
    from core.subscribers import add_subscriber, get_subscriber
    from index.taxonomy import load_taxonomy

    if not consent:
        raise click.UsageError(
            f"no consent for {email}: add --consent once the person has agreed to receive "
            "the digest (nothing was stored)"
        )
    before = get_subscriber(app.store(), email)
    sub = add_subscriber(
        app.store(),
        email,
        sectors=sectors,
        techniques=techniques,
        consent=True,
        source=source,
        taxonomy=load_taxonomy(app.settings()),
    )

    def said(who) -> str:
        extra = f"; techniques: {', '.join(who.techniques)}" if who.techniques else ""
        return f"{', '.join(who.sectors)}{extra}"

    if before is not None and before.active:  # a new choice replaces the one held
        click.echo(f"Updated {sub.email}: now {said(sub)} (was {said(before)}).")
    else:
        click.echo(f"Subscribed {sub.email} to {said(sub)}.")


@subscribers_cmd.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@command_options
@click.pass_obj
@friendly_errors
def list_cmd(app: AppContext, as_json: bool) -> None:
    """All subscribers, with their sectors and whether they receive the digest."""
    from core.subscribers import list_subscribers

    subs = list_subscribers(app.store())
    if as_json:
        echo_json(
            [
                {
                    "email": s.email,
                    "sectors": s.sectors,
                    "techniques": s.techniques,
                    "active": s.active,
                    "consent_at": s.consent_at.isoformat() if s.consent_at else None,
                    "consent_source": s.consent_source,
                }
                for s in subs
            ]
        )
        return
    if not subs:
        click.echo("No subscribers yet; add one with `veille subscribers add EMAIL --consent`.")
    for s in subs:
        state = "active" if s.active else "unsubscribed" if s.unsubscribed else "no consent"
        techs = f" [{', '.join(s.techniques)}]" if s.techniques else ""
        click.echo(f"{s.email:<40} {state:<12} {', '.join(s.sectors)}{techs}")


@subscribers_cmd.command("remove")
@click.argument("email")
@command_options
@click.pass_obj
@friendly_errors
def remove_cmd(app: AppContext, email: str) -> None:
    """Erase EMAIL and everything held about it (subscription, consent and send history),
    and scrub it from job-run records and job logs."""
    from jobs.erasure import erase_subscriber

    erased = erase_subscriber(app.store(), app.settings(), email)
    if not erased.held:
        raise click.ClickException(f"no data held about {erased.address}")
    click.echo(f"Removed {erased.address} and all data held about it.")
    if erased.job_runs or erased.log_files:
        click.echo(
            f"Scrubbed it from {counted(erased.job_runs, 'job run')} and "
            f"{counted(erased.log_files, 'log file')}."
        )


@subscribers_cmd.command("export")
@click.argument("email")
@command_options
@click.pass_obj
@friendly_errors
def export_cmd(app: AppContext, email: str) -> None:
    """Print, as JSON, everything held about EMAIL (GDPR access request)."""
    from core.subscribers import export_subscriber

    echo_json(export_subscriber(app.store(), email))


COMMANDS = [subscribers_cmd]
