"""`veille scheduler` and `veille jobs`: run the schedules, see them, run one job now."""

from __future__ import annotations

import click

from jobs.cli.common import AppContext, command_options, echo_json, friendly_errors

# The names of jobs.runner.JOBS, written out so `veille jobs run --help` loads no scheduler
# (a test checks that both lists agree).
JOB_NAMES = ("arxiv", "news", "reindex", "matcher", "digest", "digest_retry")


@click.command("scheduler")
@command_options
@click.pass_obj
@friendly_errors
def scheduler_cmd(app: AppContext) -> None:
    """Run the scheduled jobs in the foreground until Ctrl-C.

    Schedules come from the settings (schedule_arxiv, schedule_news, schedule_reindex,
    schedule_matcher, schedule_digest, schedule_digest_retry: cron strings in the configured
    time zone). Jobs are kept in the database and never run twice at once, even with
    several schedulers on one database. `veille jobs` shows what ran.
    """
    from jobs.cron import job_overview, run_foreground

    settings = app.settings()
    for row in job_overview(settings, app.store()):
        if row["schedule"]:
            click.echo(f"{row['job']:<13} {row['schedule']:<14} {row['description']}")
    run_foreground(
        settings,
        store=app.store(),
        ready=lambda: click.echo(
            f"Scheduler running (time zone {settings.timezone}); press Ctrl-C to stop."
        ),
    )
    click.echo("Scheduler stopped.")


@click.group("jobs", invoke_without_command=True)
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@command_options
@click.pass_context
@friendly_errors
def jobs_cmd(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The scheduled jobs (schedule, next run, last outcome) and the latest runs.

    `veille jobs run NAME` runs one job now.
    """
    if ctx.invoked_subcommand is not None:
        return
    from jobs.cron import job_overview
    from jobs.runs import recent_job_runs

    app: AppContext = ctx.obj
    store, settings = app.store(), app.settings()
    overview = job_overview(settings, store)
    runs = recent_job_runs(store, limit)
    if as_json:
        echo_json(
            {
                "jobs": overview,
                "runs": [
                    {
                        "job": r.job,
                        "started": r.started.isoformat(),
                        "finished": r.finished.isoformat() if r.finished else None,
                        "outcome": r.outcome,
                        "message": r.message,
                    }
                    for r in runs
                ],
            }
        )
        return
    click.echo(f"{'job':<13} {'schedule':<14} {'next run (UTC)':<20} last")
    for row in overview:
        idle = "(after crawls)" if row["job"] == "reindex" else "off"
        schedule = row["schedule"] or idle
        nxt = (row["next_run"] or "not scheduled")[:19].replace("T", " ")
        click.echo(f"{row['job']:<13} {schedule:<14} {nxt:<20} {row['last_outcome'] or '-'}")
    click.echo("\nRecent runs:")
    if not runs:
        click.echo("  none yet (start `veille scheduler`, or `veille jobs run NAME`)")
    for r in runs:
        took = f"{r.seconds:.1f}s" if r.seconds is not None else "running"
        line = f"  {r.started:%Y-%m-%d %H:%M} {r.job:<13} {r.outcome:<9} {took:>8}  {r.message}"
        click.echo(line)


@jobs_cmd.command("run")
@click.argument("name", type=click.Choice(JOB_NAMES))
@command_options
@click.pass_obj
@friendly_errors
def run_cmd(app: AppContext, name: str) -> None:
    """Run the job NAME now (under the same lock as the scheduler) and show the outcome.

    Exit code 1 when it failed, lost its lease (cancelled) or ran past its deadline (timeout).
    """
    from core.children import stopping_signals
    from jobs.runner import run_job

    with stopping_signals():  # SIGTERM and SIGHUP stop the job as Ctrl-C does, recorded
        run = run_job(name, app.settings(), store=app.store())
    click.echo(f"{run.job}: {run.outcome}" + (f" - {run.message}" if run.message else ""))
    if run.outcome in ("error", "cancelled", "timeout"):
        raise SystemExit(1)


COMMANDS = [scheduler_cmd, jobs_cmd]
