"""`veille dashboard`: start the Streamlit dashboard on this machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from core.children import bound_to_parent, stopping_signals
from core.settings import Settings, is_loopback_host
from jobs.cli.common import AppContext, command_options, friendly_errors

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"

# The dashboard's Streamlit theme (its colours are set here only). Streamlit draws captions (page
# descriptions, card details) in the text colour at 60 % opacity: its default text colour
# #2f2d2b gives captions of 3.9:1 on white, under the 4.5:1 WCAG AA asks. A near-black text
# colour (#0f0e0d) brings captions to 5.1:1 on white and 5.0:1 on the grey sidebar.
THEME = {"base": "light", "textColor": "#0f0e0d"}


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps a server on this machine. Unlike a link's host
    (core.settings.is_loopback_host), 0.0.0.0 and :: are not: they listen on every address."""
    name = (host or "").strip().strip("[]").rstrip(".").lower()
    if name in ("0.0.0.0", "::", ""):
        return False
    return is_loopback_host(name)


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
        # Defaults, made explicit: forms and uploads need Streamlit's XSRF token, and the
        # websocket only accepts its own origin. (The Host header is checked by the app.)
        "--server.enableXsrfProtection",
        "true",
        "--server.enableCORS",
        "true",
        "--client.toolbarMode",
        "viewer",
        *(arg for name, value in THEME.items() for arg in (f"--theme.{name}", value)),
    ]


# What a child process (Streamlit, a job started from the dashboard) inherits: what Python,
# the model libraries and the database client need, never the SMTP credentials or any other
# secret that happens to be in the operator's environment.
_INHERITED = {
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "TMPDIR",
    "TEMP",
    "TMP",
    "SYSTEMROOT",
    "COMSPEC",
    "PATHEXT",
    "WINDIR",
    "APPDATA",
    "LOCALAPPDATA",
    "USERPROFILE",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONIOENCODING",
    "PYTHONUTF8",
    "LD_LIBRARY_PATH",
    "DYLD_LIBRARY_PATH",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "TOKENIZERS_PARALLELISM",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TORCH_HOME",
    "SENTENCE_TRANSFORMERS_HOME",
    "DISPLAY",
}
_INHERITED_PREFIXES = ("LC_", "XDG_", "HF_", "TRANSFORMERS_", "STREAMLIT_", "COVERAGE_", "PG")
# Secrets the children never need: the dashboard and the crawls send no email.
_WITHHELD = {"VEILLE_SMTP_USER", "VEILLE_SMTP_PASSWORD"}


def dashboard_env(settings: Settings) -> dict[str, str]:
    """The environment of a child: the same settings (data directory, file, database URL,
    signing key, since the dashboard checks signed links), a filtered copy of the rest."""
    env = {
        name: value
        for name, value in os.environ.items()
        if (
            name in _INHERITED
            or name.startswith(_INHERITED_PREFIXES)
            or (name.startswith("VEILLE_") and name != "VEILLE_CONFIG")
        )
        and name not in _WITHHELD
    }
    env["VEILLE_DATA_DIR"] = str(settings.data_dir)
    if settings.config_file:
        env["VEILLE_CONFIG"] = str(settings.config_file)
    if settings.database_url.get_secret_value():
        env["VEILLE_DATABASE_URL"] = settings.database_url.get_secret_value()
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def start_dashboard(settings: Settings, *, host: str, port: int) -> subprocess.Popen:
    """Start Streamlit in a child process (stop it with ``.terminate()``). It ends with this
    process, even one killed with -9 (core.children); start it from the main thread."""
    env = dashboard_env(settings)
    # The app checks each request's Host header against the address it really listens on.
    env["VEILLE_DASHBOARD_HOST"], env["VEILLE_DASHBOARD_PORT"] = host, str(port)
    return subprocess.Popen(
        dashboard_command(settings, host=host, port=port), env=env, **bound_to_parent()
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

    It listens on 127.0.0.1 by default; open the printed address in a browser. Ctrl-C stops it
    (so do SIGTERM and SIGHUP; Streamlit ends with it).
    """
    settings = app.settings()
    host = host or settings.dashboard_host
    port = port or settings.dashboard_port
    check_host(host, allow_remote)
    click.echo(f"Veille dashboard on http://{host}:{port} (data: {settings.data_dir})")
    click.echo("Ctrl-C stops it.")
    process = start_dashboard(settings, host=host, port=port)
    try:
        with stopping_signals():  # SIGTERM and SIGHUP stop Streamlit too, as Ctrl-C does
            sys.exit(process.wait())
    except KeyboardInterrupt:
        pass
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


COMMANDS = [dashboard_cmd]
