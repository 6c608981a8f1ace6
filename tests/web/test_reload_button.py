"""The overview's Reload config button: a CSRF-checked form that reloads and shows the result."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from admin_kit import Admin


@pytest.fixture
def reloads(monkeypatch: pytest.MonkeyPatch, admin: Admin) -> list[Any]:
    """A stand-in for the hot-reload operation (``router.reload.reload``) that refuses the
    new config the way the real one does: ``last_reload`` with the errors."""
    calls: list[Any] = []

    async def reload(tagless: Any) -> Any:
        calls.append(tagless)
        tagless.last_reload = SimpleNamespace(
            at=tagless.clock.now(), ok=False, errors=["stores/shop.yaml:3: write_keys: empty"]
        )
        return tagless.last_reload

    monkeypatch.setattr("router.reload.reload", reload)
    return calls


async def test_the_reload_button_reloads_and_the_overview_shows_a_refusal(
    admin: Admin, reloads: list[Any]
) -> None:
    """Signed in, the overview has a Reload config form; posting it (with the CSRF token)
    reloads once and leads back to the overview, which shows the refused config's errors."""
    await admin.sign_in()
    status, _, page = await admin.request("GET", "/", headers={"Accept": "text/html"})
    assert status == 200
    assert 'action="/reload"' in page
    csrf = await admin.csrf()
    status, _, _ = await admin.request("POST", "/reload", data={})
    assert status == 403
    assert reloads == []
    status, headers, _ = await admin.request("POST", "/reload", data={"csrf_token": csrf})
    assert status == 303
    assert headers["Location"] == "/"
    assert reloads == [admin.running.app]
    _, _, page = await admin.request("GET", "/", headers={"Accept": "text/html"})
    assert "was refused; the running config is kept" in page
    assert "write_keys: empty" in page
