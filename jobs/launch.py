"""Start a scheduled job in its own process, for the dashboard's operator buttons.

The child runs `veille jobs run NAME`, which takes the job's lease: a crawl already running
(from the scheduler or another click) is not started twice. Before that, a start is refused
while the job holds its lease, and within ``operator_cooldown`` seconds of the previous start
from any dashboard session or process (the time is kept in the database), so repeated clicks
cannot pile up crawls against the sources.

A job started from the dashboard is *detached* (its own session, not bound to its parent): it
runs to its end when the dashboard restarts or its browser tab closes, as a scheduled run
would. It cannot run forever all the same: it holds the job's lease and stops at its deadline
(``job_timeout``), and `veille up` or a scheduler closes its run if it dies. Binding it would
not work anyway: the kernel ties a child to the *thread* that started it (core.children), and
Streamlit's script thread ends right after the click. `veille up`'s first crawls, started from
its main thread, are bound (``detached=False``): they end with `veille up`, even on kill -9.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from core.children import bound_to_parent
from core.settings import Settings
from core.store import Store

LAUNCHABLE = ("arxiv", "news", "reindex", "matcher")
_META = "launch:{name}"


class LaunchRefused(ValueError):
    """A start refused for now; the message says why and when it can be tried again."""


def _check_launchable(settings: Settings, store: Store, name: str, now: datetime) -> None:
    from jobs.runs import lease_holder  # noqa: PLC0415

    holder = lease_holder(store, name)
    if holder is not None and holder[1] > now:
        raise LaunchRefused(f"the {name} job is already running; it was not started again")
    cooldown = settings.operator_cooldown

    def claim(previous: str | None) -> str | None:
        if previous:
            elapsed = (now - datetime.fromisoformat(previous)).total_seconds()
            if 0 <= elapsed < cooldown:
                return None
        return now.isoformat()

    before, after = store.update_meta(_META.format(name=name), claim)
    if after == before and before is not None:
        elapsed = (now - datetime.fromisoformat(before)).total_seconds()
        raise LaunchRefused(
            f"the {name} job was started from the dashboard {elapsed:.0f} s ago; it can be "
            f"started again in {cooldown - elapsed:.0f} s (operator_cooldown = {cooldown:g} s)"
        )


def launch_job(
    settings: Settings,
    name: str,
    *,
    store: Store | None = None,
    now: datetime | None = None,
    detached: bool = True,
) -> subprocess.Popen:
    """Start job ``name`` in a child process. ValueError for a job that cannot be started
    from the dashboard; LaunchRefused while it runs or within the cool-down. ``detached``:
    the job outlives this process; else it gets SIGTERM when this process (more exactly,
    the calling thread) ends."""
    if name not in LAUNCHABLE:
        raise ValueError(f"cannot launch {name!r}; choose one of {', '.join(LAUNCHABLE)}")
    from jobs.cli.dashboard import dashboard_env  # noqa: PLC0415

    moment = now or datetime.now(UTC)
    own = store is None
    store = store or Store.from_settings(settings)
    try:
        _check_launchable(settings, store, name, moment)
    finally:
        if own:
            store.close()
    veille = Path(sys.executable).parent / "veille"
    command = (
        [str(veille)]
        if veille.exists()
        else [sys.executable, "-c", "from jobs.cli import main; main()"]
    )
    log = (Path(settings.data_dir) / "logs").resolve()
    log.mkdir(parents=True, exist_ok=True)
    with (log / f"job-{name}.log").open("ab") as out:
        return subprocess.Popen(
            [*command, "jobs", "run", name],
            env=dashboard_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the operator's terminal is not for the job
            **({} if detached else bound_to_parent()),
        )
