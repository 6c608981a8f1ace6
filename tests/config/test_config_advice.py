"""Warnings for configs that load but are likely mistakes; ``tagless check`` prints them."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.cli import main
from router.config import load_config
from router.config.advice import config_warnings
from router.plugins import config_classes, discover


def write_config(root: Path, store: str) -> Path:
    (root / "stores").mkdir(parents=True)
    (root / "tagless.yaml").write_text("admin: {token: t}\n")
    (root / "stores" / "shop.yaml").write_text(store)
    return root


def warnings_of(tmp_path: Path, client_ip: str, destinations: str) -> list[str]:
    store = f"store: shop\nwrite_keys: [k]\nclient_ip: {client_ip}\ndestinations: {destinations}\n"
    root = write_config(tmp_path, store)
    found = config_warnings(load_config(root, config_classes(discover()), {}))
    return [w for w in found if "client_ip.own_addresses" not in w]  # tested on their own


HOOK = '[{id: hook, type: webhook, url: "http://127.0.0.1:9/hook"}]'


@pytest.mark.parametrize(
    "proxies",
    [
        "[127.0.0.1/32]",
        "[10.0.0.0/8, 192.168.0.0/16, 172.16.0.0/12]",
        "[cloudflare]",
        '["2001:db8::/32", "::1"]',
        "[]",
    ],
)
def test_proxies_that_are_real_proxies_pass(tmp_path: Path, proxies: str) -> None:
    assert warnings_of(tmp_path, f"{{trusted_proxies: {proxies}}}", HOOK) == []


@pytest.mark.parametrize(
    ("entry", "index", "addresses"),
    [
        ("0.0.0.0/0", 0, "4,294,967,296"),
        ("10.0.0.0/7", 0, "33,554,432"),
        ('"::/0"', 0, "340,282,366,920,938,463,463,374,607,431,768,211,456"),
        ('"2001:db8::/31"', 0, "158,456,325,028,528,675,187,087,900,672"),
        ('"::ffff:0.0.0.0/96"', 0, "4,294,967,296"),  # IPv4-mapped: all of IPv4
    ],
)
def test_a_trusted_network_wider_than_a_proxy_fleet_is_flagged(
    tmp_path: Path, entry: str, index: int, addresses: str
) -> None:
    [warning] = warnings_of(tmp_path, f"{{trusted_proxies: [{entry}]}}", HOOK)
    assert warning.startswith(f"{tmp_path}/stores/shop.yaml: client_ip.trusted_proxies[{index}]: ")
    assert f"from {addresses} addresses" in warning
    assert "any host in it can choose the customer IP" in warning


def test_a_store_whose_destinations_are_all_disabled_is_flagged(tmp_path: Path) -> None:
    disabled = '[{id: hook, type: webhook, enabled: false, url: "http://127.0.0.1:9/hook"}]'
    assert warnings_of(tmp_path, "{}", disabled) == [
        f"{tmp_path}/stores/shop.yaml: destinations: no enabled destination:"
        " events are accepted and stored but go nowhere"
    ]


def test_check_prints_warnings_and_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_config(
        tmp_path,
        f"store: shop\nwrite_keys: [k]\nclient_ip: {{trusted_proxies: [0.0.0.0/0]}}\n"
        f"destinations: {HOOK}\n",
    )
    with pytest.raises(SystemExit) as done:
        main(["check", "--config", str(root)])
    assert done.value.code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"warning: {root}/stores/shop.yaml: client_ip.trusted_proxies[0]: ")
    assert out[-1] == f"{root}: ok (1 store, 1 destination)"
