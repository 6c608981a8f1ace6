"""Identity keys of a store file: write key kinds and the client_ip range additions."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import Config, ConfigError, load_config
from router.stores import write_keys

ENV = {"TAGLESS_ADMIN_TOKEN": "admin-token-1234567890"}
MAIN = 'admin: {token: "${TAGLESS_ADMIN_TOKEN}"}\n'


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config" / "stores").mkdir(parents=True)
    (tmp_path / "config" / "tagless.yaml").write_text(MAIN)
    return Path("config")


def load(config_dir: Path, shop: str, env: dict[str, str] | None = None) -> Config:
    (config_dir / "stores" / "shop.yaml").write_text(shop)
    return load_config(config_dir, {}, {**ENV, **(env or {})})


def issues(config_dir: Path, shop: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(config_dir, shop)
    return [str(issue) for issue in caught.value.errors]


def test_write_keys_take_a_kind_and_a_plain_string_is_a_server_key(config_dir: Path) -> None:
    """``{key, kind}`` entries give the kind; a plain string stays a server key."""
    shop = (
        "store: shop\n"
        "allowed_origins: [https://shop.example]\n"
        "write_keys:\n"
        "  - backend-key\n"
        "  - {key: page-key, kind: browser}\n"
        "  - {key: '${OTHER_KEY}', kind: server}\n"
    )
    config = load(config_dir, shop, {"OTHER_KEY": "other-key"})
    assert write_keys(config.stores) == [
        ("backend-key", "shop", "server"),
        ("page-key", "shop", "browser"),
        ("other-key", "shop", "server"),
    ]


def test_a_browser_key_without_allowed_origins_is_refused_at_its_line(config_dir: Path) -> None:
    """A browser key needs allowed_origins; the error names the file, line and entry."""
    shop = "store: shop\nwrite_keys:\n  - backend-key\n  - {key: page-key, kind: browser}\n"
    assert issues(config_dir, shop) == [
        "config/stores/shop.yaml:4: write_keys[1]: a browser key needs allowed_origins (the"
        " pages that may send with it), e.g. allowed_origins: [https://shop.example]"
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "{key: k, kind: mobile}",
            "config/stores/shop.yaml:2: write_keys[0].kind: expected one of: server, browser;"
            " got 'mobile'",
        ),
        ("{kind: browser}", "config/stores/shop.yaml:2: write_keys[0]: missing required key 'key'"),
        (
            "{key: k, type: browser}",
            "config/stores/shop.yaml:2: write_keys[0].type: unknown key 'type'; valid keys: key,"
            " kind",
        ),
        ("''", "config/stores/shop.yaml:2: write_keys[0].key: expected a string (a secret), got"
         " an empty string"),
    ],
)  # fmt: skip
def test_bad_write_key_entries_say_what_is_valid(
    config_dir: Path, entry: str, message: str
) -> None:
    """A malformed write key entry is reported at its path with the valid choices."""
    assert issues(config_dir, f"store: shop\nwrite_keys: [{entry}]\n") == [message]


def test_duplicate_keys_are_found_in_both_entry_forms(config_dir: Path) -> None:
    """The same key as a plain string and as ``{key: ...}`` is a duplicate; never shown."""
    shop = "store: shop\nwrite_keys:\n  - k1\n  - {key: k1, kind: server}\n"
    found = issues(config_dir, shop)
    assert found == [
        "config/stores/shop.yaml:4: write_keys[1]: this write key is already used by"
        " write_keys[0]; keys must be unique"
    ]


def test_cdn_and_cloud_ranges_are_read_and_checked(config_dir: Path) -> None:
    """client_ip.cdn_ranges and cloud_ranges take IPs and CIDRs; a bad entry names itself."""
    shop = (
        "store: shop\nwrite_keys: [k]\n"
        "client_ip: {cdn_ranges: [81.2.70.0/24], cloud_ranges: ['2a02:8070::/32', 81.2.71.1]}\n"
    )
    config = load(config_dir, shop)
    assert config.stores[0].client_ip.cdn_ranges == ("81.2.70.0/24",)
    assert config.stores[0].client_ip.cloud_ranges == ("2a02:8070::/32", "81.2.71.1")
    bad = shop.replace("81.2.70.0/24", "81.2.70.1/24")
    assert issues(config_dir, bad) == [
        "config/stores/shop.yaml:3: client_ip.cdn_ranges: '81.2.70.1/24' has host bits set;"
        " did you mean 81.2.70.0/24?"
    ]
