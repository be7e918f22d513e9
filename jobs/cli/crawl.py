"""`veille crawl`: the group that each crawler's command module adds a subcommand to."""

from __future__ import annotations

import click

from jobs.cli.common import command_options


@click.group("crawl")
@command_options
def crawl() -> None:
    """Collect new documents from the configured sources, then index them."""


COMMANDS = [crawl]
