"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error names what went wrong: a bad parameter is listed under ``invalid_params`` with
its name and the reason, so a client can show it next to the right field.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.markup import noun_for

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    422: "Invalid parameter",
    429: "Too many requests",
    500: "Internal error",
    503: "Not ready",
}


class Problem(HTTPException):
    """An error with a detail sentence and, optionally, the parameter at fault."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.param = param


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    invalid: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if invalid:
        body["invalid_params"] = invalid
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _location(loc: tuple | list) -> str:
    parts = [str(p) for p in loc if p not in ("query", "path", "body", "header")]
    return ".".join(parts) or "request"


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        broken = [e for e in errors if e.get("type") == "json_invalid"]
        if broken:  # not a wrong parameter: the body as a whole could not be read
            reason = broken[0].get("ctx", {}).get("error") or broken[0].get("msg", "")
            return problem_response(
                request,
                400,
                f"the request body is not valid JSON ({reason})",
                invalid=[{"name": "body", "reason": str(reason)}],
            )
        invalid = [
            {"name": _location(e.get("loc", ())), "reason": e.get("msg", "")} for e in errors
        ]
        names = sorted({i["name"] for i in invalid})
        title = f"invalid {noun_for(len(names), 'parameter')}: {', '.join(names)}"
        return problem_response(request, 422, title, invalid=invalid)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return problem_response(
            request, 500, "the server failed on this request; the log has the details"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        param = getattr(exc, "param", None)
        invalid = [{"name": param, "reason": str(exc.detail)}] if param else None
        detail = str(exc.detail) if exc.detail else _TITLES.get(exc.status_code, "Error")
        return problem_response(
            request, exc.status_code, detail, invalid=invalid, headers=exc.headers
        )
