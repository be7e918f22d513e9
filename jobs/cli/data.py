"""`veille load`, `veille index`, `veille stats`, `veille up`: getting data in and ready."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from core.markup import counted
from jobs.cli.common import AppContext, command_options, echo_json, friendly_errors

if TYPE_CHECKING:  # imported where used: `veille --help` loads no model, index or database
    from core.loader import LoadReport
    from index.indexer import IndexReport
    from index.search import Searcher

MAX_REJECTS_SHOWN = 50


def _print_load(report: LoadReport) -> None:
    r = report.result
    click.echo(
        f"{report.path}: {counted(report.accepted, 'line')} accepted — {r.new} new, "
        f"{r.updated} updated, "
        f"{r.unchanged} unchanged, {counted(r.duplicates, 'duplicate')} of stored documents"
    )
    if report.rejected:
        click.echo(f"{counted(len(report.rejected), 'line')} rejected:", err=True)
        for item in report.rejected[:MAX_REJECTS_SHOWN]:
            click.echo(f"  line {item.line}: {item.reason}", err=True)
        if len(report.rejected) > MAX_REJECTS_SHOWN:
            click.echo(f"  … and {len(report.rejected) - MAX_REJECTS_SHOWN} more", err=True)


def _print_index(report: IndexReport) -> None:
    if report.up_to_date:
        click.echo(f"Index is up to date: {counted(report.indexed, 'document')} ({report.kind}).")
        return
    how = "rebuilt" if report.rebuilt else f"updated ({report.changed} changed)"
    click.echo(
        f"Embedded {counted(report.embedded, 'new text')}; index {how}: "
        f"{counted(report.indexed, 'document')} "
        f"({report.kind}) in {report.seconds:.1f}s."
    )


@click.command("load")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--source", default="local", show_default=True, help="Source name for lines without one."
)
@click.option("--index/--no-index", "then_index", default=False, help="Index right after loading.")
@command_options
@click.pass_obj
@friendly_errors
def load_cmd(app: AppContext, files: tuple[str, ...], source: str, then_index: bool) -> None:
    """Import documents from JSON Lines files (one JSON object a line).

    Each line needs "title" and "text"; optional: "id", "url", "published" (ISO date),
    "authors", "categories", "source", "kind" (paper|news). Bad lines are skipped and
    reported with their number; the exit code is 2 when any line was rejected.
    """
    from tqdm.auto import tqdm

    from core.loader import load_jsonl
    from index.pipeline import index_and_match

    settings = app.settings()
    store = app.store()
    rejected = changed = 0
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise click.ClickException(f"no such file: {path}")
        with tqdm(
            total=path.stat().st_size,
            unit="B",
            unit_scale=True,
            desc=f"Loading {path.name}",
            disable=not sys.stderr.isatty(),
        ) as bar:
            report = load_jsonl(
                path,
                store,
                max_chars=settings.max_text_chars,
                default_source=source,
                progress=bar.update,
            )
        _print_load(report)
        rejected += len(report.rejected)
        changed += report.result.new + report.result.updated
    if then_index:
        _print_index(index_and_match(store, settings, show_progress=True))
    elif changed:
        click.echo("Run `veille index` to make the new documents searchable.")
    if rejected:
        sys.exit(2)


@click.command("index")
@click.option("--rebuild", is_flag=True, help="Rebuild the index files from the stored vectors.")
@command_options
@click.pass_obj
@friendly_errors
def index_cmd(app: AppContext, rebuild: bool) -> None:
    """Embed documents that have no vector yet and bring the search indexes up to date.

    Safe to interrupt: embeddings are saved batch by batch and the index files are replaced
    atomically, so running it again carries on where it stopped.
    """
    from index.pipeline import index_and_match

    report = index_and_match(app.store(), app.settings(), show_progress=True, force_rebuild=rebuild)
    _print_index(report)


@click.command("stats")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@command_options
@click.pass_obj
@friendly_errors
def stats_cmd(app: AppContext, as_json: bool) -> None:
    """Documents by kind, source and month; index size; the last crawl runs."""
    from index.indexer import index_status

    store = app.store()
    settings = app.settings()
    data = store.stats()
    data["index"] = index_status(store, settings)
    data["data_dir"] = str(settings.data_dir)
    data["crawl_runs"] = [
        {
            "source": r.source,
            "started": r.started.isoformat() if r.started else None,
            "finished": r.finished.isoformat() if r.finished else None,
            "status": r.status,
            "pages": r.pages,
            "fetched": r.fetched,
            "new": r.new,
            "updated": r.updated,
            "errors": r.errors,
            "last_error": r.last_error,
        }
        for r in store.recent_runs(10)
    ]
    if as_json:
        echo_json(data)
        return
    click.echo(f"Data directory: {data['data_dir']}")
    click.echo(
        f"Documents: {data['documents']} ({counted(data['duplicates'], 'duplicate')} recorded)"
    )
    for label, key in (
        ("By kind", "by_kind"),
        ("By source", "by_source"),
        ("By month", "by_month"),
    ):
        if data[key]:
            click.echo(f"{label}:")
            for name, count in data[key].items():
                click.echo(f"  {name:<30} {count:>8}")
    idx = data["index"]
    state = "current" if idx["current"] else "needs `veille index`"
    click.echo(
        f"Index: {counted(idx['vectors'], 'vector')}, {idx['kind'] or 'none'}, {state}; "
        f"{counted(idx['pending_embeddings'], 'text')} waiting for embedding; model {idx['model']}"
    )
    if data["crawl_runs"]:
        click.echo("Last crawl runs:")
        for run in data["crawl_runs"]:
            click.echo(
                f"  {run['started'][:19]}  {run['source']:<16} {run['status']:<8} "
                f"new {run['new']}, updated {run['updated']}, errors {run['errors']}"
                + (f" — {run['last_error']}" if run["last_error"] else "")
            )
    else:
        click.echo("No crawl has run yet.")


EXAMPLE_QUERY = "graph neural networks for transaction fraud detection"


def prepare(app: AppContext) -> Searcher:
    """Load the starter corpus if needed, index, and return a ready searcher."""
    from core.loader import load_starter
    from index.pipeline import index_and_match
    from index.search import Searcher

    store = app.store()
    settings = app.settings()
    started = time.perf_counter()
    reports = load_starter(store)
    new = sum(r.result.new + r.result.updated for r in reports)
    total = store.count()
    click.echo(
        f"Data directory: {settings.data_dir}\n"
        f"Starter corpus: {sum(r.accepted for r in reports)} documents ({new} new or updated); "
        f"{total} documents in the store."
    )
    _print_index(index_and_match(store, settings, show_progress=True))
    searcher = Searcher.open(settings, store=store)
    click.echo(f"Ready in {time.perf_counter() - started:.1f}s.")
    return searcher


@click.command("up")
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="After preparing, run the dashboard and the scheduler until Ctrl-C.",
)
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Dashboard port.")
@click.option("--api-port", default=None, type=click.IntRange(1, 65535), help="API port.")
@click.option(
    "--scheduler/--no-scheduler",
    default=True,
    show_default=True,
    help="Also run the scheduled jobs (crawls, re-index, trends, digest).",
)
@command_options
@click.pass_obj
@friendly_errors
def up_cmd(
    app: AppContext, serve: bool, port: int | None, api_port: int | None, scheduler: bool
) -> None:
    """Start Veille: load the starter corpus, index it, then run the dashboard and the jobs.

    The first run embeds the starter corpus (a progress bar shows it); later runs reuse
    everything. Ctrl-C stops the dashboard and the scheduler cleanly.
    """
    searcher = prepare(app)
    hits = searcher.search(EXAMPLE_QUERY, k=5)
    click.echo(f'\nExample: veille search "{EXAMPLE_QUERY}" --k 5')
    for rank, hit in enumerate(hits, 1):
        click.echo(f"  {rank}. [{hit.score:.3f}] {hit.title} ({hit.published}) {hit.url}")
    if not serve:
        click.echo(
            '\nNext: veille dashboard, veille search "YOUR QUERY" (--json, --since, --kind), '
            "veille similar ID, veille stats, veille load FILE.jsonl. See veille --help."
        )
        return
    serve_forever(app, port=port, with_scheduler=scheduler, api_port=api_port)


def _reachable(url: str, timeout: float = 3.0) -> tuple[bool, str]:
    """Whether a TCP connection to ``url``'s host opens (the offline check of a first run)."""
    import socket  # noqa: PLC0415
    from urllib.parse import urlsplit  # noqa: PLC0415

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, host
    except OSError:
        return False, host


def first_crawls(app: AppContext) -> list[subprocess.Popen]:
    """On a first run (no crawl recorded yet), start the arXiv and news crawls in the
    background at once instead of waiting for their schedule. Offline: say so and go on."""
    from jobs.launch import launch_job  # noqa: PLC0415

    settings, store = app.settings(), app.store()
    if not settings.first_run_crawl or store.recent_runs(limit=1):
        return []
    online, host = _reachable(settings.arxiv_api_url)
    if not online:
        click.echo(
            f"Offline: {host} cannot be reached, so the first crawl waits for its schedule "
            f"({settings.schedule_arxiv}); the starter corpus is shown meanwhile."
        )
        return []
    click.echo(
        f"First run: crawling arXiv (the last {settings.arxiv_initial_days} days) and the news "
        "sources in the background; the Sources page shows their runs."
    )
    # Bound to `veille up` (they stop with it), unlike the dashboard's detached jobs.
    return [launch_job(settings, name, detached=False) for name in ("arxiv", "news")]


def _stop_child(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve_forever(
    app: AppContext, *, port: int | None, with_scheduler: bool, api_port: int | None = None
) -> None:
    """Run the dashboard and the API (child processes) and the scheduler (threads) until
    Ctrl-C, SIGTERM or SIGHUP; stopping Veille stops them all. Killed with -9, its children
    still end: they asked for SIGTERM when it dies (core.children)."""
    from core.children import stopping_signals  # noqa: PLC0415
    from jobs.cli.api import start_api  # noqa: PLC0415
    from jobs.cli.dashboard import check_host, start_dashboard  # noqa: PLC0415

    settings = app.settings()
    host = settings.dashboard_host
    port = port or settings.dashboard_port
    api_port = api_port or settings.api_port
    check_host(host, allow_remote=False)
    check_host(settings.api_host, allow_remote=False)
    jobs = None
    if with_scheduler:
        from jobs.cron import start_background  # noqa: PLC0415

        jobs = start_background(settings, store=app.store())
        click.echo("Scheduler started: `veille jobs` lists the schedules and the last runs.")
    crawls = first_crawls(app)
    children = {
        "dashboard": start_dashboard(settings, host=host, port=port),
        "API": start_api(settings, host=settings.api_host, port=api_port),
    }
    click.echo(f"\nDashboard: http://{host}:{port}   (Ctrl-C stops Veille)")
    click.echo(
        f"API:       http://{settings.api_host}:{api_port}/docs   "
        "(keys: `veille api-keys create NAME`)"
    )
    stopping = threading.Event()

    def _terminate(_signum: int, _frame: object) -> None:
        stopping.set()

    code = 0
    try:
        with stopping_signals(_terminate, ctrl_c=True):
            while not stopping.is_set():
                ended = [(name, p.poll()) for name, p in children.items() if p.poll() is not None]
                if ended:
                    name, code = ended[0]
                    click.echo(f"The {name} stopped (exit code {code}).", err=True)
                    break
                stopping.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        click.echo("Stopping Veille…")
        for child in [*children.values(), *crawls]:
            _stop_child(child)
        if jobs is not None:
            from jobs.cron import stop  # noqa: PLC0415

            stop(jobs, wait=True)
        click.echo("Stopped.")
    if code:
        sys.exit(code)


COMMANDS = [load_cmd, index_cmd, stats_cmd, up_cmd]
