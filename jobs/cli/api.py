"""`veille api` (serve the HTTP API) and `veille api-keys` (create, list, revoke keys)."""

from __future__ import annotations

import click

from jobs.cli.common import AppContext, command_options, echo_json, friendly_errors


def check_api_host(host: str, allow_remote: bool) -> None:
    from jobs.cli.dashboard import is_loopback  # noqa: PLC0415

    if not is_loopback(host) and not allow_remote:
        raise click.BadParameter(
            f"{host} is not a loopback address; the API listens on this machine only unless "
            "you add --allow-remote (put it behind a TLS reverse proxy: keys travel in headers)",
            param_hint="--host",
        )


def start_api(settings, *, host: str, port: int):
    """Start `veille api` in a child process (stop it with ``.terminate()``). It ends with this
    process, even one killed with -9 (core.children); start it from the main thread."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from core.children import bound_to_parent  # noqa: PLC0415
    from jobs.cli.dashboard import dashboard_env  # noqa: PLC0415

    command = [sys.executable, "-c", "from jobs.cli import main; main()"]
    return subprocess.Popen(
        [*command, "api", "--host", host, "--port", str(port)],
        env=dashboard_env(settings),
        **bound_to_parent(),
    )


@click.command("api")
@click.option("--host", default=None, help="Address to listen on (default: settings, 127.0.0.1).")
@click.option(
    "--port", default=None, type=click.IntRange(1, 65535), help="Port (default: settings, 8600)."
)
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host.")
@command_options
@click.pass_obj
@friendly_errors
def api_cmd(app: AppContext, host: str | None, port: int | None, allow_remote: bool) -> None:
    """Serve the analyst HTTP API (search, documents, sectors, trends, feedback).

    JSON routes are under /v1 and need a key (`veille api-keys create NAME`); the docs are at
    /docs and the schema at /openapi.json. The digest's unsubscribe and feedback links land
    here too. It listens on 127.0.0.1 by default. Ctrl-C stops it. One process serves
    requests in a thread pool; for more, run several behind a reverse proxy (README).
    """
    import uvicorn  # noqa: PLC0415

    from api.app import create_app  # noqa: PLC0415

    settings = app.settings()
    host = host or settings.api_host
    port = port or settings.api_port
    check_api_host(host, allow_remote)
    listener = _bind(host, port)  # a port in use is said now, not after the model has loaded
    click.echo(f"Loading the model and the indexes (data: {settings.data_dir})…")
    application = create_app(settings, store=app.store())
    config = uvicorn.Config(
        application,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    click.echo(f"Veille API on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    uvicorn.Server(config).run(sockets=[listener])


def _bind(host: str, port: int):
    """The API's listening socket, bound before anything slow is loaded."""
    import socket  # noqa: PLC0415

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}. Another program (another "
            "`veille api`?) may be using the port: stop it, or choose another with --port."
        ) from exc
    listener.set_inheritable(True)
    return listener


@click.group("api-keys")
def keys_group() -> None:
    """API keys: `veille api-keys create NAME`, `list`, `revoke NAME`."""


@keys_group.command("create")
@click.argument("name")
@click.option("--read-only", is_flag=True, help="The key may read but not send feedback.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@command_options
@click.pass_obj
@friendly_errors
def create_cmd(app: AppContext, name: str, read_only: bool, as_json: bool) -> None:
    """Create a key named NAME. The key is shown once: copy it now; only its hash is kept."""
    from core.api_keys import create_key  # noqa: PLC0415

    created = create_key(app.store(), name, read_only=read_only)
    if as_json:
        echo_json({"name": created.key.name, "key": created.secret, "read_only": read_only})
        return
    click.echo(created.secret)
    access = "read-only" if read_only else "read and write"
    click.echo(
        f"API key {created.key.name!r} ({access}) created. Copy it now: it is not shown again.\n"
        f"Use it as: curl -H 'Authorization: Bearer {created.secret[:11]}…' "
        f"http://127.0.0.1:{app.settings().api_port}/v1/search?q=...",
        err=True,
    )


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@command_options
@click.pass_obj
@friendly_errors
def list_cmd(app: AppContext, as_json: bool) -> None:
    """The keys: name, handle, access, created, revoked (never the keys themselves)."""
    from core.api_keys import list_keys  # noqa: PLC0415

    keys = list_keys(app.store())
    rows = [
        {
            "name": k.name,
            "handle": k.handle,
            "read_only": k.read_only,
            "created": k.created.isoformat(timespec="seconds"),
            "revoked": k.revoked.isoformat(timespec="seconds") if k.revoked else None,
        }
        for k in keys
    ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No API key yet: `veille api-keys create NAME` makes one.")
        return
    click.echo(f"{'name':<24} {'handle':<10} {'access':<11} {'created':<20} revoked")
    for r in rows:
        access = "read-only" if r["read_only"] else "read-write"
        click.echo(
            f"{r['name'][:24]:<24} {r['handle']:<10} {access:<11} {r['created'][:19]:<20} "
            f"{(r['revoked'] or '')[:19]}"
        )


@keys_group.command("revoke")
@click.argument("name")
@command_options
@click.pass_obj
@friendly_errors
def revoke_cmd(app: AppContext, name: str) -> None:
    """Revoke the key NAME (or its handle): it stops working at once, in every API process."""
    from core.api_keys import revoke_key  # noqa: PLC0415

    key = revoke_key(app.store(), name)
    click.echo(f"API key {key.name!r} ({key.handle}) is revoked.")


COMMANDS = [api_cmd, keys_group]
