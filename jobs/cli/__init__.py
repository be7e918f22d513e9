"""The `veille` command: a thin front door over the library; one module per area."""

from __future__ import annotations

import os

import click

from jobs.cli.common import AppContext, command_options, configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@command_options
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="veille")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Veille: AI tech watch. Collect papers and news, index them, search, follow trends.

    Start with `veille up` (loads the starter corpus, indexes it, shows an example), then
    `veille search "QUERY"`. Every command takes --data-dir and --config.
    """
    ctx.ensure_object(AppContext)
    configure_logging(verbose)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# One module per area; each exposes COMMANDS (top-level commands or groups). A module that
# only adds subcommands to a group (e.g. `veille crawl arxiv`) sets COMMANDS = [].
AREAS = (
    "data",
    "search",
    "crawl",
    "crawl_arxiv",
    "news",
    "insights",
    "dashboard",
    "jobs",
    "subscribers",
    "digest",
    "matcher",
)


def _register() -> None:
    import importlib

    for name in AREAS:
        module = importlib.import_module(f"jobs.cli.{name}")
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="veille")
