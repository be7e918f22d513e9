"""Start a scheduled job in its own process, for the dashboard's operator buttons.

The child runs `veille jobs run NAME`, which takes the job's lease: a crawl already running
(from the scheduler or another click) is not started twice, the run is recorded and skipped.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.settings import Settings

LAUNCHABLE = ("arxiv", "news", "reindex")


def launch_job(settings: Settings, name: str) -> subprocess.Popen:
    if name not in LAUNCHABLE:
        raise ValueError(f"cannot launch {name!r}; choose one of {', '.join(LAUNCHABLE)}")
    from jobs.cli.dashboard import dashboard_env  # noqa: PLC0415

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
            start_new_session=True,
        )
