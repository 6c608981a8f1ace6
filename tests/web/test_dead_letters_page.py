"""The dead-letters page: rows with Replay buttons; a replay shows a dry run, then sends."""

from __future__ import annotations

import html
import re

from admin_kit import Admin, wait_for

HTML = {"Accept": "text/html"}


async def test_the_replay_button_first_shows_a_dry_run_then_replays(admin: Admin) -> None:
    """Pressing a row's Replay shows how many would be sent and sends nothing; confirming
    replays that one event, which the platform then receives."""
    await admin.dead(2)
    await admin.sign_in()
    status, _, page = await admin.request("GET", "/dead-letters?store=shop", headers=HTML)
    assert status == 200
    assert page.count(">Replay</button>") == 2
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    row = html.unescape(re.findall(r'name="one" value="([^"]+)"', page)[0])
    event_id = row.split('"')[-2]
    requests = len(admin.hook.requests)

    form = {"csrf_token": csrf.group(1), "store": "shop", "one": row}
    status, _, dry = await admin.request("POST", "/dead-letters/replay", data=form)
    assert status == 200
    assert "Dry run: <strong>1</strong> dead letter would be sent again" in dry
    assert ">Replay 1 dead letter</button>" in dry
    assert len(admin.hook.requests) == requests

    admin.refuse = False
    status, headers, _ = await admin.request(
        "POST", "/dead-letters/replay", data={**form, "confirm": "1"}
    )
    assert status == 303
    assert headers["Location"] == "/dead-letters?store=shop&replayed=1"

    async def delivered() -> bool:
        return any(
            r.status == 200 and e["event_id"] == event_id
            for r in admin.hook.requests
            for e in r.json()["events"]
        )

    await wait_for(delivered, "the replayed event at the webhook")
    status, _, page = await admin.request("GET", headers["Location"], headers=HTML)
    assert "Replayed 1 dead letter" in page
    assert page.count(">Replay</button>") == 1


async def test_replay_all_matching_counts_every_dead_letter_of_the_filter(admin: Admin) -> None:
    """ "Replay all matching" with a reason filter dry-runs every dead letter it lists."""
    await admin.dead(3)
    await admin.sign_in()
    csrf = await admin.csrf()
    form = {"csrf_token": csrf, "store": "shop", "scope": "all"}
    status, _, dry = await admin.request("POST", "/dead-letters/replay", data=form)
    assert status == 200
    assert "<strong>3</strong> dead letters would be sent again" in dry
    form["reason"] = "no_such_reason"
    status, _, dry = await admin.request("POST", "/dead-letters/replay", data=form)
    assert "<strong>0</strong> dead letters would be sent again" in dry
    assert "Replay 0" not in dry
