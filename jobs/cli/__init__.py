"""The `veille` command: a thin front door over the library; one module per area."""

from __future__ import annotations

import os

import click

from jobs.cli.common import AppContext, command_options, configure_logging

# Commands load lazily: `veille --help` and `veille COMMAND --help` import only what they show
# (the model, FAISS and SQLAlchemy stay unloaded). Each command names its module under
# jobs/cli and its one-line help; a test checks these lines against the commands themselves.
COMMANDS: dict[str, tuple[str, str]] = {
    "load": ("data", "Import documents from JSON Lines files (one JSON object a line)."),
    "index": (
        "data",
        "Embed documents that have no vector yet and bring the search indexes up to date.",
    ),
    "stats": ("data", "Documents by kind, source and month; index size; the last crawl runs."),
    "up": (
        "data",
        "Start Veille: load the starter corpus, index it, then run the dashboard and the jobs.",
    ),
    "search": ("search", "Search the indexed documents by meaning and keywords."),
    "similar": (
        "search",
        "The documents closest in meaning to DOC_ID (an arXiv id, URL or loaded id).",
    ),
    "crawl": ("crawl", "Collect new documents from the configured sources, then index them."),
    "sources": (
        "news",
        "List the news sources: last crawl, items new/updated, last error, enabled or failing.",
    ),
    "sectors": (
        "insights",
        "The best matching innovations for each use case of SECTOR (all sectors if omitted).",
    ),
    "trends": (
        "insights",
        "Weekly counts per technique or use case, growth, bursts, and emerging themes.",
    ),
    "dashboard": (
        "dashboard",
        "Start the dashboard (This week, Sectors, Search, Document, Trends, Sources).",
    ),
    "scheduler": ("jobs", "Run the scheduled jobs in the foreground until Ctrl-C."),
    "jobs": ("jobs", "The scheduled jobs (schedule, next run, last outcome) and the latest runs."),
    "subscribers": (
        "subscribers",
        "Digest subscribers: add (with consent), list, remove (erase), export (GDPR).",
    ),
    "digest": ("digest", "Preview or send the weekly digest."),
    "matcher": (
        "matcher",
        "The learned sector matcher: `veille matcher status`, `veille matcher train`.",
    ),
    "feedback": (
        "matcher",
        "Say whether a match fits: `veille feedback ID --sector S --fits` (or --does-not-fit).",
    ),
    "api": ("api", "Serve the analyst HTTP API (search, documents, sectors, trends, feedback)."),
    "shortlist": (
        "shortlist",
        "Shortlists per use case: add, list, move, note, owner, remove, log, export.",
    ),
    "api-keys": ("api", "API keys: `veille api-keys create NAME`, `list`, `revoke NAME`."),
    "db": ("db", "The database schema: `veille db current`, `veille db upgrade`."),
}
# Modules that add subcommands to another area's group (e.g. `veille crawl arxiv`).
EXTENDS: dict[str, tuple[str, ...]] = {"crawl": ("crawl_arxiv", "news")}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        if name not in COMMANDS:
            return None
        import importlib

        module = importlib.import_module(f"jobs.cli.{COMMANDS[name][0]}")
        for extra in EXTENDS.get(name, ()):
            importlib.import_module(f"jobs.cli.{extra}")
        for command in module.COMMANDS:
            if command.name == name:
                self.add_command(command)
                return command
        raise RuntimeError(f"jobs.cli.{COMMANDS[name][0]} has no command {name!r}")

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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


def main() -> None:
    cli(prog_name="veille")
