"""`veille dashboard`: start the Streamlit dashboard on this machine."""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
from pathlib import Path

import click

from core.settings import Settings
from jobs.cli.common import AppContext, command_options, friendly_errors

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"

# The dashboard's Streamlit theme (its colours are set here only). Streamlit draws captions (page
# descriptions, card details) in the text colour at 60 % opacity: its default text colour
# #2f2d2b gives captions of 3.9:1 on white, under the 4.5:1 WCAG AA asks. A near-black text
# colour (#0f0e0d) brings captions to 5.1:1 on white and 5.0:1 on the grey sidebar.
THEME = {"base": "light", "textColor": "#0f0e0d"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def dashboard_command(settings: Settings, *, host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
        *(arg for name, value in THEME.items() for arg in (f"--theme.{name}", value)),
    ]


def dashboard_env(settings: Settings) -> dict[str, str]:
    """The child sees the same settings: data directory, file and database URL."""
    env = dict(os.environ)
    env["VEILLE_DATA_DIR"] = str(settings.data_dir)
    if settings.config_file:
        env["VEILLE_CONFIG"] = str(settings.config_file)
    if settings.database_url:
        env["VEILLE_DATABASE_URL"] = settings.database_url
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def start_dashboard(settings: Settings, *, host: str, port: int) -> subprocess.Popen:
    """Start Streamlit in a child process (stop it with ``.terminate()``)."""
    return subprocess.Popen(
        dashboard_command(settings, host=host, port=port), env=dashboard_env(settings)
    )


def check_host(host: str, allow_remote: bool) -> None:
    if not is_loopback(host) and not allow_remote:
        raise click.BadParameter(
            f"{host} is not a loopback address; the dashboard has no login, so it only "
            "listens on this machine unless you add --allow-remote",
            param_hint="--host",
        )


@click.command("dashboard")
@click.option("--host", default=None, help="Address to listen on (default: settings, 127.0.0.1).")
@click.option(
    "--port", default=None, type=click.IntRange(1, 65535), help="Port (default: settings, 8501)."
)
@click.option(
    "--allow-remote", is_flag=True, help="Allow a non-loopback --host (the dashboard has no login)."
)
@command_options
@click.pass_obj
@friendly_errors
def dashboard_cmd(app: AppContext, host: str | None, port: int | None, allow_remote: bool) -> None:
    """Start the dashboard (This week, Sectors, Search, Document, Trends, Sources).

    It listens on 127.0.0.1 by default; open the printed address in a browser. Ctrl-C stops it.
    """
    settings = app.settings()
    host = host or settings.dashboard_host
    port = port or settings.dashboard_port
    check_host(host, allow_remote)
    click.echo(f"Veille dashboard on http://{host}:{port} (data: {settings.data_dir})")
    click.echo("Ctrl-C stops it.")
    process = start_dashboard(settings, host=host, port=port)

    def _stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # a SIGTERM stops Streamlit too, as Ctrl-C does

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        sys.exit(process.wait())
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


COMMANDS = [dashboard_cmd]
