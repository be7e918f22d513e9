"""What every `veille` command shares: settings resolution, --data-dir, errors, output."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import click

from core.fsutil import out_of_space
from core.models import as_utc

if TYPE_CHECKING:  # imported when used: `veille COMMAND --help` must not load SQLAlchemy
    from core.settings import Settings
    from core.store import Store


@dataclass
class AppContext:
    """Collects option values; settings are resolved on first use, not at import."""

    overrides: dict[str, Any] = field(default_factory=dict)
    config_file: str | None = None
    _settings: Settings | None = None
    _store: Store | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            from core.settings import load_settings

            self._settings = load_settings(self.config_file, **self.overrides)
        return self._settings

    def store(self) -> Store:
        if self._store is None:
            from core.store import Store

            self._store = Store.from_settings(self.settings())
        return self._store


def _set_data_dir(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(AppContext).overrides["data_dir"] = value


def _set_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(AppContext).config_file = value


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    expose_value=False,
    is_eager=True,
    callback=_set_data_dir,
    help="Data directory (database, indexes). Default: $VEILLE_DATA_DIR or a per-user folder.",
)
config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False),
    expose_value=False,
    is_eager=True,
    callback=_set_config,
    help="Settings file (TOML). Default: $VEILLE_CONFIG or ./veille.toml if present.",
)


def command_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add --data-dir and --config to a command, so they work before or after its name."""
    return data_dir_option(config_option(func))


OUT_OF_SPACE = (
    "out of disk space, or over a file-size limit ({exc}). What was stored before is kept and "
    "the index in use is unchanged; free some space and run the command again: it carries on "
    "where it stopped."
)


def _first_line(exc: BaseException) -> str:
    cause = exc
    while cause.__cause__ is not None:  # SQLAlchemy's wrapper adds the SQL; the cause says it
        cause = cause.__cause__
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''}"[:300]


_PATH_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)
_PATH_WHY = {
    FileNotFoundError: "no such file or folder (a folder on the way may be missing)",
    NotADirectoryError: "a part of this path is a file, not a folder",
    IsADirectoryError: "this is a folder; give a file name",
    PermissionError: "permission denied",
}


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors a user can cause into one clear line and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ValueError, KeyError) as exc:  # ConfigError is a ValueError
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise click.ClickException(str(message)) from exc
        except _PATH_ERRORS as exc:
            if exc.filename is None:  # Veille's own "no such file: ..." sentences
                raise click.ClickException(str(exc)) from exc
            # a path the user gave that cannot be read or written: say which and why
            why = _PATH_WHY.get(type(exc), exc.strerror)
            raise click.ClickException(f"{exc.filename}: {why}") from exc
        except Exception as exc:
            # DatabaseBusy comes from core.db; when that was never loaded it cannot be one
            db_module = sys.modules.get("core.db")
            if db_module is not None and isinstance(exc, db_module.DatabaseBusy):
                raise click.ClickException(str(exc)) from exc
            migrations = sys.modules.get("core.migrations")  # a database newer than Veille
            if migrations is not None and isinstance(exc, migrations.SchemaTooNew):
                raise click.ClickException(str(exc)) from exc
            if out_of_space(exc):  # one line, not a traceback wall
                raise click.ClickException(OUT_OF_SPACE.format(exc=_first_line(exc))) from exc
            raise

    return wrapper


def parse_date(_ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return as_utc(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2025-03-18", param=param) from None


NAME_WIDTH = 64  # names up to this long are shown whole in text tables


def name_column(names: list[str], cap: int = NAME_WIDTH) -> tuple[int, Callable[[str], str]]:
    """(width, fit) for a table's first column: as wide as its longest name, so that no name
    is cut ("Transformers, attention and large language models"), up to ``cap`` characters;
    ``fit`` pads a name to the width, and ends one longer than ``cap`` with an ellipsis."""
    width = min(max((len(n) for n in names), default=0), cap)

    def fit(name: str) -> str:
        shown = name if len(name) <= width else name[: width - 1].rstrip() + "…"
        return f"{shown:<{width}}"

    return width, fit


def _json_value(value: Any) -> Any:
    """What JSON cannot hold as is: dates and times in ISO 8601 ("2025-06-02T09:30:00+00:00",
    not str()'s space), anything else as its text."""
    if isinstance(value, date):  # a datetime is a date too
        return value.isoformat()
    return str(value)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, default=_json_value))


def configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True
    )
    for noisy in ("sentence_transformers", "transformers", "faiss", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
