"""The admin UI on the admin listener: sign-in, pages, and the dead-letter and replay API."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from router.web.auth import AdminAuth
from router.web.dead_letter_routes import DeadLetterRoutes
from router.web.pages import Pages, Sources

if TYPE_CHECKING:
    from router.app import Tagless

STATIC = Path(__file__).parent / "static"


def add_web(
    app: web.Application, tagless: Tagless, auth: AdminAuth, sources: Sources | None = None
) -> None:
    """Register the sign-in pages, the static assets and every page with its API; ``sources``
    replaces the ops reports the pages render (tests)."""
    auth.add_routes(app)
    app.router.add_static("/static/", STATIC, follow_symlinks=False)
    Pages(tagless, sources).add_routes(app)
    DeadLetterRoutes(tagless).add_routes(app)
