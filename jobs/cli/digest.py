"""`veille digest`: preview the weekly email digest, or send it to every subscriber."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from jobs.cli.common import AppContext, command_options, friendly_errors, parse_date


@click.command("digest")
@click.option(
    "--preview",
    "preview_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the HTML digest to this file (the text part goes beside it, .txt).",
)
@click.option("--email", help="Preview the digest of this subscriber (default: every sector).")
@click.option("--send", is_flag=True, help="Send this week's digest to every subscriber.")
@click.option("--now", callback=parse_date, help="Pretend it is this date (YYYY-MM-DD).")
@click.option(
    "--allow-loopback-links",
    is_flag=True,
    help="Send even though VEILLE_PUBLIC_URL points at this machine (links work only here).",
)
@command_options
@click.pass_obj
@friendly_errors
def digest_cmd(
    app: AppContext,
    preview_path: str | None,
    email: str | None,
    send: bool,
    now: datetime | None,
    allow_loopback_links: bool,
) -> None:
    """Preview or send the weekly digest.

    Sending goes through the SMTP server from the settings (VEILLE_SMTP_HOST, ..._PORT,
    ..._SECURITY, ..._FROM; VEILLE_SMTP_USER / VEILLE_SMTP_PASSWORD from the environment).
    Each subscriber gets at most one digest per week; failed sends are retried by later runs.
    Links point at VEILLE_PUBLIC_URL, which must be an address subscribers can reach:
    sending is refused while it is on this machine, unless --allow-loopback-links.
    """
    from jobs.digest import preview
    from jobs.digest_delivery import send_digests

    if not preview_path and not send:
        raise click.UsageError("say what to do: --preview FILE and/or --send")
    if allow_loopback_links:
        app.overrides["allow_loopback_public_url"] = True
    store, settings = app.store(), app.settings()
    if preview_path:
        digest = preview(store, settings, email=email, now=now)
        html_path = Path(preview_path)
        html_path.write_text(digest.html, encoding="utf-8")
        text_path = html_path.with_suffix(".txt")
        text_path.write_text(digest.text, encoding="utf-8")
        click.echo(f"Wrote {html_path} and {text_path}: {digest.subject}")
    if send:
        report = send_digests(store, settings, now=now)
        click.echo(f"Digest {report.summary()}.")
        for address, error in report.failed.items():
            click.echo(f"  failed: {address}: {error}", err=True)
        for address, reason in report.deferred.items():
            click.echo(f"  deferred: {address}: {reason}", err=True)
        for address in report.uncertain:
            click.echo(
                f"  uncertain: {address}: a previous run stopped while sending; not resent",
                err=True,
            )
        if not report.ok:
            raise SystemExit(1)


COMMANDS = [digest_cmd]
