"""HTML rendering for the admin UI: the Jinja2 environment, its filters, the page response."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any, Final

import jinja2
from aiohttp import web

from router.web.sessions import CSRF_KEY

#: Every admin page: scripts and styles only from this listener, never framed, never cached,
#: no referrer to another site (a page's query may hold an order id or a hashed email; a
#: same-origin referrer keeps the form posts' Origin header, which CSRF checks: Chromium sends
#: ``Origin: null`` under ``no-referrer``).
PAGE_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
        " form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def when(unix: float | None) -> str:
    """A Unix time as ``2026-11-30 17:05:03 UTC``; none as a dash."""
    if unix is None:
        return "–"
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def share(value: float | None) -> str:
    """A share 0..1 as a whole percentage (``33%``); below 1% but above 0 as ``<1%``."""
    if value is None:
        return "–"
    if 0 < value < 0.01:
        return "<1%"
    return f"{value * 100:.0f}%"


def duration(secs: float | None) -> str:
    """Seconds as the largest sensible unit: ``850 ms``, ``42 s``, ``7 min``, ``3.5 h``, ``2 d``."""
    if secs is None:
        return "–"
    if secs < 1:
        return f"{secs * 1000:.0f} ms"
    if secs < 120:
        return f"{secs:.0f} s"
    if secs < 7200:
        return f"{secs / 60:.0f} min"
    if secs < 172_800:
        return f"{secs / 3600:.1f} h"
    return f"{secs / 86_400:.1f} d"


def size(count: int | None) -> str:
    """Bytes as ``512 B``, ``3.2 MB``, ``1.1 GB``."""
    if count is None:
        return "–"
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def millis(value: float | None) -> str:
    """A latency in milliseconds (``120 ms``), or a dash."""
    return "–" if value is None else f"{value:.0f} ms"


@functools.cache
def environment() -> jinja2.Environment:
    """The templates shipped in ``router/web/templates``, HTML-escaped, strict on typos."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("router.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, share=share, duration=duration, size=size, millis=millis)
    return env


def page(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """Render ``template`` with ``context`` plus the request's CSRF token and path."""
    csrf = request.get(CSRF_KEY)
    html = (
        environment()
        .get_template(template)
        .render(csrf=csrf, path=request.path, signed_in=csrf is not None, **context)
    )
    return web.Response(
        text=html, status=status, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS
    )
