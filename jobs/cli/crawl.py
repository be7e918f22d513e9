"""`veille crawl`: the group that each crawler's command module adds a subcommand to."""

from __future__ import annotations

import click


@click.group("crawl")
def crawl() -> None:
    """Collect new documents from the configured sources, then index them."""


COMMANDS = [crawl]
