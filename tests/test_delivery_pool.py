"""How the lanes are dealt over delivery processes (``server.delivery_processes``)."""

from __future__ import annotations

import itertools

import orjson
import pytest

from router.delivery_pool import deal, parse_lanes


@pytest.mark.parametrize(("lanes", "count"), [(5, 2), (3, 3), (1, 4), (0, 2), (17, 4)])
def test_every_lane_goes_to_exactly_one_process_and_shares_differ_by_one_at_most(
    lanes: int, count: int
) -> None:
    keys = [(f"store{i % 3}", f"dest{i}") for i in range(lanes)]
    shares = deal(reversed(keys), count)
    assert sorted(shares) == list(range(1, count + 1))
    dealt = list(itertools.chain.from_iterable(shares.values()))
    assert sorted(dealt) == sorted(keys)
    sizes = [len(share) for share in shares.values()]
    assert max(sizes) - min(sizes) <= 1


def test_the_deal_follows_the_lanes_not_the_order_they_come_in() -> None:
    keys = [("shop", d) for d in ("spotify", "meta", "ga4", "google_ads", "bigquery")]
    assert (
        deal(keys, 2)
        == deal(reversed(keys), 2)
        == {
            1: [("shop", "bigquery"), ("shop", "google_ads"), ("shop", "spotify")],
            2: [("shop", "ga4"), ("shop", "meta")],
        }
    )


def test_a_share_crosses_the_command_line_unchanged() -> None:
    share = [("shop", "meta"), ("blog", "hook")]
    assert parse_lanes(orjson.dumps(share).decode()) == share
