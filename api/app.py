"""The analyst HTTP API: FastAPI over the index and core layers.

``create_app(settings)`` builds the app; ``veille api`` serves it with uvicorn. Versioned
JSON routes live under ``/v1`` and need a Bearer key; ``/healthz``, ``/unsubscribe``,
``/feedback`` and ``/shortlist`` (the digest's links) do not. The schema is at
``/openapi.json``, the docs at ``/docs``. The model and indexes load when the server starts, once.
"""

# No `from __future__ import annotations` here: the routes' annotations use local values
# (max_k, max_offset) that FastAPI must see evaluated.
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse

from api import problems, public
from api.auth import RateLimiter, reader, writer
from api.problems import Problem
from api.schemas import (
    DocumentOut,
    FeedbackIn,
    FeedbackOut,
    Health,
    ProblemOut,
    SearchPage,
    SectorList,
    SectorMatches,
    SimilarPage,
    ThemesOut,
    TrendsOut,
)
from api.service import SearchQuery, Service
from core.api_keys import ApiKey
from core.models import as_utc
from core.settings import ConfigError, Settings
from core.store import Store

Kind = Literal["paper", "news"]
Mode = Literal["hybrid", "dense", "keyword"]
Text = Annotated[str | None, Query(max_length=200)]


def _problems(*codes: int) -> dict[int | str, dict]:
    """OpenAPI entries for the problem+json errors a route can answer."""
    words = {
        400: "The request body is not valid JSON",
        401: "No key, or an unknown or revoked one",
        403: "The key is read-only",
        404: "Not found",
        422: "A parameter is invalid; invalid_params names it",
        429: "Rate limit reached; see Retry-After",
    }
    return {
        code: {
            "model": ProblemOut,
            "description": words[code],
            "content": {"application/problem+json": {}},
        }
        for code in codes
    }


READ = _problems(401, 422, 429)
READ_ONE = _problems(401, 404, 422, 429)
WRITE = _problems(400, 401, 403, 422, 429)
Since = Annotated[str | None, Query(description="Published on or after (YYYY-MM-DD).")]
Until = Annotated[str | None, Query(description="Published on or before (YYYY-MM-DD).")]


def _date(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return as_utc(value)
    except ValueError:
        raise Problem(422, f"{value!r} is not a date like 2025-03-18", param=name) from None


_UNKNOWN = (
    ("unknown document", "document"),
    ("unknown use case", "use_case"),
    ("unknown technique", "technique"),
    ("unknown sector", "sector"),
)


def _lookup(call, *args, param: str, status: int = 404, **kwargs):
    """Run a service call; KeyError/ValueError become a problem naming the parameter at
    fault (read from the message when it says which, else ``param``)."""
    try:
        return call(*args, **kwargs)
    except KeyError as exc:
        message = str(exc.args[0] if exc.args else exc)
        named = next((p for prefix, p in _UNKNOWN if message.startswith(prefix)), param)
        raise Problem(status, message, param=named) from None
    except (ValueError, ConfigError) as exc:
        raise Problem(422, str(exc), param=param) from None


def create_app(
    settings: Settings, *, store: Store | None = None, service: Service | None = None
) -> FastAPI:
    store = store or Store.from_settings(settings)
    service = service or Service(settings, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.searcher()  # load the model and the indexes before the first request
        yield

    app = FastAPI(
        title="Veille API",
        version="1",
        summary="Search papers and news on machine learning, and see what fits each sector.",
        description=(
            "Every `/v1` route needs `Authorization: Bearer <key>` (create one with "
            "`veille api-keys create NAME`). Errors are RFC 9457 problem details."
        ),
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.limiter = RateLimiter(settings.api_rate_per_minute)
    problems.install(app)
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api_cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.include_router(public.router)
    max_k = settings.api_max_k
    max_offset = settings.api_max_offset

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.get("/healthz", response_model=Health, tags=["service"])
    def healthz() -> dict:
        """Liveness and what is loaded; no key needed."""
        return service.health()

    @app.get("/v1/search", response_model=SearchPage, tags=["search"], responses=READ)
    def search(
        q: Annotated[
            str,
            Query(
                min_length=1,
                max_length=1000,
                pattern=r"\S",
                description="The query (not only spaces).",
            ),
        ],
        k: Annotated[int, Query(ge=1, le=max_k, description="Hits on this page.")] = 10,
        offset: Annotated[int, Query(ge=0, le=max_offset, description="Hits to skip.")] = 0,
        mode: Mode = "hybrid",
        since: Since = None,
        until: Until = None,
        kind: Kind | None = None,
        source: Text = None,
        sector: Text = None,
        use_case: Text = None,
        technique: Text = None,
        _key: ApiKey = Depends(reader),
    ) -> dict:
        """Search by meaning and keywords; the same parameters as `veille search`."""
        start, end = _date(since, "since"), _date(until, "until")
        if start and end and start > end:
            raise Problem(422, "since is after until", param="since")
        query = SearchQuery(
            q=q,
            k=k,
            offset=offset,
            mode=mode,
            since=start,
            until=end,
            kind=kind,
            source=source,
            sector=sector,
            use_case=use_case,
            technique=technique,
        )
        return _lookup(service.search, query, param="q", status=422)

    @app.get(
        "/v1/documents/{doc_id:path}/similar",
        response_model=SimilarPage,
        tags=["documents"],
        responses=READ_ONE,
    )
    def similar(
        doc_id: Annotated[str, Path(description="arXiv id, URL or loaded id.")],
        k: Annotated[int, Query(ge=1, le=max_k)] = 10,
        _key: ApiKey = Depends(reader),
    ) -> dict:
        """The documents closest in meaning to one document."""
        return _lookup(service.similar, doc_id, k, param="doc_id")

    @app.get(
        "/v1/documents/{doc_id:path}",
        response_model=DocumentOut,
        tags=["documents"],
        responses=READ_ONE,
    )
    def document(
        doc_id: Annotated[str, Path(description="arXiv id, URL or loaded id.")],
        _key: ApiKey = Depends(reader),
    ) -> dict:
        """One document with its sector matches, techniques and maturity signals."""
        return _lookup(service.document, doc_id, param="doc_id")

    @app.get("/v1/sectors", response_model=SectorList, tags=["sectors"], responses=READ)
    def sectors(_key: ApiKey = Depends(reader)) -> dict:
        """The sectors and their use cases."""
        return service.sectors()

    @app.get(
        "/v1/sectors/{sector}", response_model=SectorMatches, tags=["sectors"], responses=READ_ONE
    )
    def sector(
        sector: Annotated[str, Path(max_length=80)],
        since: Annotated[str | None, Query(description="Published on or after.")] = None,
        k: Annotated[int, Query(ge=1, le=max_k, description="Matches per use case.")] = 5,
        _key: ApiKey = Depends(reader),
    ) -> dict:
        """The best matches for each use case of a sector, with why each was made."""
        return _lookup(service.sector, sector, since=_date(since, "since"), k=k, param="sector")

    @app.get("/v1/trends", response_model=TrendsOut, tags=["trends"], responses=READ)
    def trends(
        by: Literal["technique", "use_case"] = "technique",
        weeks: Annotated[int, Query(ge=3, le=520)] = 12,
        until: Annotated[str | None, Query(description="End of the window.")] = None,
        _key: ApiKey = Depends(reader),
    ) -> dict:
        """Weekly counts per technique or use case, growth and bursts."""
        return service.trends(by=by, weeks=weeks, until=_date(until, "until"))

    @app.get("/v1/themes", response_model=ThemesOut, tags=["trends"], responses=READ)
    def themes(
        until: Annotated[str | None, Query(description="End of the window.")] = None,
        _key: ApiKey = Depends(reader),
    ) -> dict:
        """Emerging themes: recent clusters that were rare before."""
        return service.themes(until=_date(until, "until"))

    @app.post(
        "/v1/feedback",
        response_model=FeedbackOut,
        status_code=201,
        tags=["feedback"],
        responses=WRITE,
    )
    def feedback(body: FeedbackIn, key: ApiKey = Depends(writer)) -> dict:
        """Say whether a document fits a sector (or one of its use cases). Needs a key that
        is not read-only. The latest answer about a document and sector wins."""
        return _lookup(
            service.feedback,
            body.document,
            sector=body.sector,
            use_case=body.use_case,
            fits=body.fits,
            by=(body.by or key.name),
            param="document",
            status=422,
        )

    @app.middleware("http")
    async def _no_store(request: Request, call_next):
        response = await call_next(request)
        if request.url.path.startswith("/v1/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app
