"""Settings: defaults, then ``veille.toml``, then ``VEILLE_*`` environment variables.

Nothing is read at import time: call :func:`load_settings` when a value is needed.
TOML sections are flattened, so ``[smtp] host = "..."`` and ``VEILLE_SMTP_HOST`` set the
same field ``smtp_host``. Secrets (SMTP password, signing key) are read from the
environment only; a TOML file that sets them is refused.

Example::

    settings = load_settings(data_dir="/tmp/veille")
    settings.database_url  # 'sqlite:////tmp/veille/veille.db'
"""

from __future__ import annotations

import contextvars
import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core.markup import noun_for

# Fields that must never come from a file in the repository or on disk.
SECRET_FIELDS = frozenset({"smtp_password", "smtp_user", "secret_key"})
# Fields whose value is never shown in an error message (the database URL may hold a password).
HIDDEN_FIELDS = SECRET_FIELDS | {"database_url"}
SECRET_KEY_MIN_BYTES = 32

_toml_values: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "veille_toml_values", default=None
)


class ConfigError(ValueError):
    """A configuration value or file is wrong; the message names it."""


class _TomlSource(PydanticBaseSettingsSource):
    """Feeds the flattened TOML values prepared by :func:`load_settings`."""

    def get_field_value(self, field, field_name):  # pragma: no cover - unused by pydantic
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_toml_values.get() or {})


class Settings(BaseSettings):
    """Every tunable of Veille, with defaults that need no file."""

    model_config = SettingsConfigDict(env_prefix="VEILLE_", extra="ignore")

    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("veille", appauthor=False)),
        description="Where the database, the indexes and the caches live.",
    )
    database_url: SecretStr = Field(
        default=SecretStr(""),
        description="SQLAlchemy URL; empty means SQLite in the data directory. Secret: it may "
        "carry a password (read it through `sqlalchemy_url`).",
    )
    config_file: Path | None = Field(default=None, description="The TOML file that was read.")
    db_busy_timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a SQLite write waits for another writer's lock before giving up.",
    )

    # Embeddings and indexes
    model: str = Field(
        default="bundled:all-MiniLM-L6-v2",
        description="sentence-transformers model name or path; 'bundled:' uses the packaged one.",
    )
    embed_batch_size: int = Field(default=64, ge=1, le=4096)
    embed_chunk: int = Field(
        default=512, ge=1, description="Texts embedded and committed together (kill-safe unit)."
    )
    embed_max_chars: int = Field(default=4000, ge=64, description="Text cut before embedding.")
    ann_threshold: int = Field(
        default=200_000, ge=1, description="Above this many vectors an IVF index replaces exact."
    )
    ivf_nprobe: int = Field(default=48, ge=1)
    search_mode: Literal["hybrid", "dense", "keyword"] = "hybrid"

    # Loading
    max_text_chars: int = Field(
        default=200_000, ge=100, description="Longer texts are rejected at load."
    )

    # arXiv crawler
    arxiv_api_url: str = "https://export.arxiv.org/api/query"
    arxiv_categories: list[str] = Field(
        default_factory=lambda: [
            "cs.LG",
            "cs.CV",
            "cs.CL",
            "cs.AI",
            "cs.NE",
            "stat.ML",
            "q-fin.CP",
            "q-fin.ST",
            "q-fin.RM",
            "eess.IV",
            "cs.RO",
            "cs.CY",
        ]
    )
    arxiv_queries: list[str] = Field(default_factory=list)
    arxiv_delay: float = Field(default=3.0, ge=0.0, description="Seconds between API requests.")
    arxiv_page_size: int = Field(default=100, ge=1, le=2000)
    arxiv_max_retries: int = Field(default=4, ge=0)
    arxiv_timeout: float = Field(default=30.0, gt=0, description="Seconds to wait for a page.")
    arxiv_backoff: float = Field(
        default=5.0, ge=0.0, description="First retry pause in seconds; doubles each retry."
    )
    arxiv_initial_days: int = Field(
        default=7, ge=1, description="How far back the very first crawl of a query goes."
    )
    arxiv_max_bytes: int = Field(
        default=100_000_000, ge=10_000, description="Larger API answers are refused."
    )

    # Where crawlers may connect: public addresses only, plus these networks (CIDR).
    crawl_allowed_networks: list[str] = Field(
        default_factory=list,
        description="Non-public networks the crawlers may reach (e.g. an intranet, 10.1.0.0/16); "
        "loopback, private and link-local addresses are refused otherwise.",
    )

    # News crawler
    first_run_crawl: bool = Field(
        default=True,
        description="`veille up` crawls arXiv and the news at once when nothing was crawled yet.",
    )
    news_sources: list[dict[str, Any]] = Field(default_factory=list)
    news_follow_pages: bool = True
    news_max_page_bytes: int = Field(default=5_000_000, ge=1000)
    news_timeout: float = Field(default=30.0, gt=0)
    news_http_cache: bool = False
    news_default_sources: bool = Field(
        default=True, description="Crawl the shipped list of AI news sources too."
    )
    news_download_delay: float = Field(
        default=1.0, ge=0.0, description="Minimum seconds between requests to one site."
    )
    news_concurrency_per_domain: int = Field(default=2, ge=1, le=32)
    source_silence_days: int = Field(
        default=14,
        ge=1,
        description="A source that usually brings items and brought none for this many days "
        "is reported as silent.",
    )
    source_failing_runs: int = Field(
        default=3, ge=1, description="A source failing this many crawls in a row is reported."
    )
    news_store_every: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between writes of the items read so far (a stopped crawl keeps "
        "them); a batch of 50 items is written at once too.",
    )
    news_follow_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts whose article pages any source may follow, besides the feed's own "
        "host and the source's follow_hosts ('*': any host).",
    )
    news_retry_times: int = Field(default=2, ge=0, description="Retries on 5xx and timeouts.")
    user_agent: str = "VeilleBot/0.1 (+https://github.com/veille; AI tech-watch; polite crawler)"

    # Matching
    taxonomy_file: Path | None = None

    # Scheduler and digest
    timezone: str = "Europe/Paris"
    schedule_arxiv: str = Field(default="0 6 * * *", description="cron: arXiv crawl")
    schedule_news: str = Field(default="0 */2 * * *", description="cron: news crawl")
    schedule_matcher: str = Field(
        default="*/15 * * * *",
        description="cron: retrain the sector matcher when feedback was given since the last run",
    )
    schedule_digest: str = Field(default="0 7 * * mon", description="cron: weekly digest")
    schedule_reindex: str = Field(
        default="", description="cron: extra re-index runs ('' = only after each crawl)"
    )
    schedule_digest_retry: str = Field(
        default="20 * * * *", description="cron: retry this week's failed digest sends"
    )
    job_timeout: float = Field(
        default=6 * 3600,
        gt=0,
        description="Seconds a job may run before it is stopped and recorded as timed out.",
    )
    job_timeouts: dict[str, float] = Field(
        default_factory=dict,
        description="Per-job deadlines in seconds, e.g. {digest = 7200}; others use job_timeout.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8600",
        description="Where readers' links point (unsubscribe, feedback): the API's public address.",
    )
    allow_loopback_public_url: bool = Field(
        default=False,
        description="Send digests even though public_url points at this machine (tests only).",
    )
    operator_emails: list[str] = Field(
        default_factory=list,
        description="Subscribers whose digest ends with a section for the operator (sources "
        "that fell silent or keep failing); the preview of every sector shows it too.",
    )
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "ssl"] = "none"
    smtp_from: str = "Veille <veille@localhost>"
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Signs the links in emails; at least 32 bytes. Empty: a key kept in the DB.",
    )

    # Dashboard
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = Field(default=8501, ge=1, le=65535)
    dashboard_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the dashboard answers to, besides its own address and the "
        "hosts of dashboard_url and public_url (e.g. the reverse proxy's name); any other "
        "Host header is refused.",
    )
    operator_cooldown: float = Field(
        default=300.0,
        ge=0,
        description="Seconds before a job started from the dashboard can be started again.",
    )

    dashboard_url: str = Field(
        default="", description="The dashboard's address in emails ('' = http://host:port)."
    )

    # Shortlists and the opportunity score
    opportunity_weights: dict[str, float] = Field(
        default_factory=lambda: {"relevance": 0.5, "maturity": 0.3, "momentum": 0.2},
        description="Weights of the opportunity score's parts (relevance, maturity, momentum).",
    )

    # HTTP API
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8600, ge=1, le=65535)
    api_max_k: int = Field(default=100, ge=1, le=1000, description="Most hits one page returns.")
    api_max_offset: int = Field(
        default=900, ge=0, le=10_000, description="Deepest page start a search may ask for."
    )
    api_rate_per_minute: int = Field(
        default=600, ge=0, description="Requests a key may make per minute (0 = no limit)."
    )
    api_cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS; empty = CORS off."
    )

    @field_validator("secret_key", mode="after")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        size = len(value.get_secret_value().encode("utf-8"))
        if 0 < size < SECRET_KEY_MIN_BYTES:
            raise ValueError(
                f"VEILLE_SECRET_KEY is {size} bytes long; it must be at least "
                f"{SECRET_KEY_MIN_BYTES} (make one with: python -c "
                '"import secrets; print(secrets.token_urlsafe(32))")'
            )
        return value

    def dashboard_address(self) -> str:
        """The dashboard's address for readers: ``dashboard_url``, else host and port."""
        return self.dashboard_url or f"http://{self.dashboard_host}:{self.dashboard_port}"

    @field_validator("crawl_allowed_networks", mode="after")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(str(entry).strip(), strict=False)
            except ValueError as exc:
                raise ValueError(f"{entry!r} is not a network like 10.0.0.0/8 ({exc})") from None
        return [str(entry).strip() for entry in value]

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return Path(os.path.expandvars(str(value))).expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls,
        init_settings,
        env_settings,
        dotenv_settings,
        file_secret_settings,
    ):
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL to connect with (password included: never print it)."""
        if self.database_url.get_secret_value():
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'veille.db'}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"


def is_loopback_host(host: str) -> bool:
    """True for a name or address that only reaches this machine (localhost, 127.0.0.0/8,
    ::1, 0.0.0.0): a link to it from an email opens nothing for anyone else."""
    name = (host or "").strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


_ANY_ADDRESS = ("0.0.0.0", "::", "")


def dashboard_hosts(settings: Settings) -> set[str]:
    """The host names the dashboard may be reached by (the Host header of a request).

    Its listening address (and the loopback names when it listens on this machine or on
    every address), the hosts of ``dashboard_url`` and ``public_url`` (one reverse proxy often
    serves both), and ``dashboard_allowed_hosts``.
    """
    hosts = {h.strip().strip("[]").rstrip(".").lower() for h in settings.dashboard_allowed_hosts}
    bind = settings.dashboard_host.strip().strip("[]").lower()
    if is_loopback_host(bind) or bind in _ANY_ADDRESS:
        hosts |= {"127.0.0.1", "localhost", "::1"}
    if bind not in _ANY_ADDRESS:
        hosts.add(bind)
    for url in (settings.dashboard_url, settings.public_url):
        public = urlsplit(url.strip()).hostname
        if public:
            hosts.add(public.lower())
    return hosts - {""}


def host_allowed(header: str | None, allowed: set[str]) -> bool:
    """Whether a request's Host header (``name``, ``name:port``, ``[v6]:port``) names one
    of ``allowed``. A request whose name was rebound to our address by a hostile DNS
    (DNS rebinding) carries the attacker's name here, and is refused."""
    value = (header or "").strip().lower()
    if not value:
        return False
    if value.startswith("["):
        name = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:
        name = value.split(":", 1)[0]
    else:
        name = value
    return name.rstrip(".") in allowed


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}".replace("-", "_")
        if isinstance(value, dict):
            flat.update(_flatten(value, prefix=f"{name}_"))
        else:
            flat[name] = value
    return flat


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The TOML file to read: explicit path, ``VEILLE_CONFIG``, or ``./veille.toml``."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("VEILLE_CONFIG")
    if env:
        return Path(env)
    local = Path.cwd() / "veille.toml"
    return local if local.is_file() else None


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse and flatten a settings file, with errors that name the file and the line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror or exc}") from exc
    try:
        table = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"settings file {path} is not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from exc
    flat = _flatten(table)
    leaked = sorted(SECRET_FIELDS & flat.keys())
    if leaked:
        names = ", ".join(f"VEILLE_{n.upper()}" for n in leaked)
        raise ConfigError(
            f"settings file {path} sets {noun_for(len(leaked), 'secret')} {', '.join(leaked)}: "
            f"secrets come from the environment only ({names})"
        )
    known = set(Settings.model_fields)
    unknown = sorted(set(flat) - known)
    if unknown:
        raise ConfigError(
            f"settings file {path} has unknown {noun_for(len(unknown), 'setting')}: "
            f"{', '.join(unknown)}"
        )
    flat["config_file"] = path
    return flat


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Resolve settings now: overrides > environment > TOML file > defaults."""
    path = find_config_file(config_file)
    values = read_config_file(path) if path else {}
    token = _toml_values.set(values)
    try:
        clean = {k: v for k, v in overrides.items() if v is not None}
        return Settings(**clean)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            origin = _origin(field, path)
            problems.append(f"{field} ({origin}): {err['msg']}")
        raise ConfigError("bad setting: " + "; ".join(problems)) from exc
    finally:
        _toml_values.reset(token)


def _origin(field: str, path: Path | None) -> str:
    env_name = f"VEILLE_{field.upper()}"
    if env_name in os.environ:
        if field in HIDDEN_FIELDS:
            return f"environment variable {env_name} (value not shown)"
        return f"environment variable {env_name}={os.environ[env_name]!r}"
    if path:
        return f"settings file {path}"
    return "argument"
