"""The pages a digest reader reaches without a key: unsubscribe and "does it fit?".

``GET /unsubscribe?token=…`` shows a confirmation button: mail scanners that open every link
unsubscribe nobody. ``POST /unsubscribe?token=…`` unsubscribes; it is also the RFC 8058
one-click endpoint that mail clients call with ``List-Unsubscribe=One-Click`` in the body.
``GET /feedback?token=…`` says what the signed link would record and asks for one click;
``POST /feedback`` records it. ``GET /shortlist?token=…`` and ``POST /shortlist`` do the same
for the digest's "add to shortlist" links. A forged or altered token changes nothing.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from core.markup import sentence

router = APIRouter(
    include_in_schema=True,
    tags=["public"],
    responses={400: {"description": "Invalid or altered link", "content": {"text/html": {}}}},
)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Veille</title>
<style>
body {{ font-family: system-ui, sans-serif; color: #1a1a1a; background: #ffffff;
       max-width: 40rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }}
button {{ font: inherit; padding: .5rem 1rem; background: #0b5cad; color: #ffffff;
         border: 2px solid #0b5cad; border-radius: 4px; cursor: pointer; }}
button:focus-visible {{ outline: 3px solid #1a1a1a; outline-offset: 2px; }}
.error {{ border-left: 4px solid #a00000; padding-left: .75rem; }}
</style>
</head>
<body>
<main>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A small accessible page; ``body`` must already be escaped HTML."""
    return HTMLResponse(
        _PAGE.format(title=html.escape(title), body=body),
        status_code=status,
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


def _form(action: str, token: str, label: str) -> str:
    return (
        f'<form method="post" action="{html.escape(action)}">'
        f'<input type="hidden" name="token" value="{html.escape(token)}">'
        f'<button type="submit">{html.escape(label)}</button></form>'
    )


async def _token(request: Request) -> str:
    """The token from the query string, else from a form body (at most 8 kB read)."""
    token = request.query_params.get("token", "")
    if token:
        return token
    body = (await request.body())[:8192].decode("utf-8", "replace")
    return (parse_qs(body).get("token") or [""])[0]


def _error(title: str, message: str, status: int = 400) -> HTMLResponse:
    said = html.escape(sentence(message))  # errors are written as clauses: "this link …"
    return page(title, f'<p class="error">{said}. Nothing was changed.</p>', status)


@router.get("/unsubscribe", response_class=HTMLResponse, summary="Unsubscribe: confirmation page")
def unsubscribe_page(request: Request, token: str = "") -> HTMLResponse:
    from jobs.facade import check_unsubscribe_token  # noqa: PLC0415

    if not token:
        return _error("Unsubscribe", "This page is opened from the link in a Veille digest")
    service = request.app.state.service
    try:
        check_unsubscribe_token(service.settings, service.store, token)
    except ValueError as exc:
        return _error("Unsubscribe", str(exc))
    return page(
        "Unsubscribe from the Veille digest",
        "<p>Press the button to stop receiving the weekly digest.</p>"
        + _form("/unsubscribe", token, "Unsubscribe"),
    )


@router.post("/unsubscribe", response_class=HTMLResponse, summary="Unsubscribe (RFC 8058)")
async def unsubscribe(request: Request) -> HTMLResponse:
    from jobs.facade import unsubscribe_with_token  # noqa: PLC0415

    service = request.app.state.service
    try:
        unsubscribe_with_token(service.store, service.settings, await _token(request))
    except ValueError as exc:
        return _error("Unsubscribe", str(exc))
    return page(
        "You are unsubscribed",
        "<p>You will not receive the Veille digest any more.</p>",
    )


@router.get("/feedback", response_class=HTMLResponse, summary="Digest feedback: confirmation")
def feedback_page(request: Request, token: str = "") -> HTMLResponse:
    from jobs.facade import read_feedback_token  # noqa: PLC0415

    service = request.app.state.service
    title = "Tell Veille whether a match fits"
    if not token:
        return _error(title, "This page is opened from the 'Does it fit?' links of the digest")
    try:
        link = read_feedback_token(service.settings, service.store, token)
    except ValueError as exc:
        return _error(title, str(exc))
    doc = service.store.resolve(link.document)
    name = doc.title if doc else link.document
    target = _use_case_name(service.settings, link.sector, link.use_case)
    word = "fits" if link.fits else "does not fit"
    return page(
        title,
        f"<p>Record that “{html.escape(name)}” {word} {html.escape(target)}?</p>"
        + _form("/feedback", token, "Record my answer"),
    )


@router.post("/feedback", response_class=HTMLResponse, summary="Digest feedback: record")
async def feedback(request: Request) -> HTMLResponse:
    from jobs.facade import record_feedback_from_token  # noqa: PLC0415

    service = request.app.state.service
    title = "Tell Veille whether a match fits"
    try:
        record_feedback_from_token(service.store, service.settings, await _token(request))
    except (ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        return _error(title, str(message))
    return page(
        "Thank you",
        "<p>Your answer is recorded, and the document already follows it. The matcher "
        "learns from it at its next training.</p>",
    )


@router.get("/shortlist", response_class=HTMLResponse, summary="Digest shortlist link: confirm")
def shortlist_page(request: Request, token: str = "") -> HTMLResponse:
    from jobs.facade import read_shortlist_token  # noqa: PLC0415

    service = request.app.state.service
    title = "Add an innovation to a shortlist"
    if not token:
        return _error(title, "This page is opened from the 'Add to shortlist' links of the digest")
    try:
        link = read_shortlist_token(service.settings, service.store, token)
    except ValueError as exc:
        return _error(title, str(exc))
    doc = service.store.resolve(link.document)
    name = doc.title if doc else link.document
    return page(
        title,
        f"<p>Add “{html.escape(name)}” to the shortlist of "
        f"{html.escape(_use_case_name(service.settings, link.sector, link.use_case))}? "
        "It starts as “new”; your team decides what happens next on the dashboard.</p>"
        + _form("/shortlist", token, "Add to the shortlist"),
    )


@router.post("/shortlist", response_class=HTMLResponse, summary="Digest shortlist link: add")
async def shortlist(request: Request) -> HTMLResponse:
    from jobs.facade import add_shortlist_from_token  # noqa: PLC0415

    service = request.app.state.service
    title = "Add an innovation to a shortlist"
    try:
        entry = add_shortlist_from_token(service.store, service.settings, await _token(request))
    except (ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        return _error(title, str(message))
    return page(
        "Added to the shortlist",
        f"<p>It is on the shortlist of "
        f"{html.escape(_use_case_name(service.settings, entry.sector, entry.use_case))} "
        f"({html.escape(entry.status_text)}). Follow it on the Shortlists page of the "
        "dashboard.</p>",
    )


def _use_case_name(settings, sector: str, use_case: str | None) -> str:
    """ "Financial services: Fraud detection" for finance/fraud_detection, or the sector's
    name alone without a use case, as readers know them; the keys when the taxonomy no
    longer has them."""
    from index.taxonomy import load_taxonomy  # noqa: PLC0415

    taxonomy = load_taxonomy(settings)
    try:
        found = taxonomy.sector(sector)
    except KeyError:
        return f"{sector}/{use_case}" if use_case else sector
    if not use_case:
        return found.name
    names = {uc.key: uc.name for uc in taxonomy.use_cases if uc.sector == found.key}
    return f"{found.name}: {names.get(use_case, use_case)}"
