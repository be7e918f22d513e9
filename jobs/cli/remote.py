"""A small client for a running Veille API, so `veille search` answers without loading the
model. Used when ``VEILLE_API_URL`` is set (with ``VEILLE_API_KEY``). Standard library only:
importing it costs nothing.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class RemoteError(Exception):
    """The API refused the request or could not be reached; the message says which."""


def api_url() -> str:
    return os.environ.get("VEILLE_API_URL", "").strip().rstrip("/")


def get(path: str, params: dict[str, Any], *, timeout: float = 30.0) -> Any:
    base = api_url()
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")})
    request = urllib.request.Request(
        f"{base}{path}" + (f"?{query}" if query else ""),
        headers={
            "Authorization": f"Bearer {os.environ.get('VEILLE_API_KEY', '')}",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        try:
            problem = json.loads(exc.read().decode("utf-8"))
            detail = problem.get("detail") or problem.get("title")
            reasons = [
                f"{p.get('name')}: {p.get('reason')}"
                for p in problem.get("invalid_params") or []
                if isinstance(p, dict) and p.get("reason")
            ]
            if reasons:  # say what is wrong with each, e.g. the API's own limit on k
                detail = f"{detail} ({'; '.join(reasons)})"
        except ValueError:
            detail = exc.reason
        hint = " (check VEILLE_API_KEY)" if exc.code in (401, 403) else ""
        raise RemoteError(f"the API at {base} answered {exc.code}: {detail}{hint}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RemoteError(
            f"cannot reach the API at {base} ({reason}); start it with `veille api` or unset "
            "VEILLE_API_URL to search locally"
        ) from None
