"""`tagless check` warns about server keys without own_addresses, and names the likely one."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.cli import main
from router.config import load_config
from router.config.advice import config_warnings
from router.identity.own_server import PeerGuess, probable_own_address
from router.plugins import config_classes, discover
from router.testing.server import RunningTagless, write_config_dir

HOOK = '[{id: archive, type: file, path: "var/out.jsonl"}]'


def store(keys: str, client_ip: str = "{}") -> str:
    return (
        f"store: shop\nwrite_keys: {keys}\nallowed_origins: [https://shop.example]\n"
        f"client_ip: {client_ip}\ndestinations: {HOOK}\n"
    )


def own_address_warnings(root: Path, outbox: Path | None = None) -> list[str]:
    config = load_config(root, config_classes(discover()), {})
    return [w for w in config_warnings(config, outbox) if "own_addresses" in w]


@pytest.mark.parametrize(
    ("keys", "client_ip", "warned"),
    [
        ("[k]", "{}", True),
        ("[{key: k, kind: server}, {key: b, kind: browser}]", "{}", True),
        ("[k]", "{own_addresses: [203.0.113.10]}", False),
        ("[{key: b, kind: browser}]", "{}", False),
    ],
)
def test_server_keys_without_own_addresses_are_flagged(
    tmp_path: Path, keys: str, client_ip: str, warned: bool
) -> None:
    """Only a store with a server key and no own_addresses gets the warning."""
    root = write_config_dir(tmp_path / "config", store(keys, client_ip))
    found = own_address_warnings(root)
    assert bool(found) == warned
    if warned:
        assert found[0].startswith(f"{root}/stores/store0.yaml: client_ip.own_addresses: ")
        assert found[0].endswith("once events arrive, 'tagless check' names the likely one")


async def test_the_warning_names_the_most_frequent_peer_of_server_key_events(
    tmp_path: Path,
) -> None:
    """Read from the outbox: the peer of the server-key events without context.ip."""
    root = write_config_dir(tmp_path / "config", store("[k]"))
    outbox = root / "tagless.db"
    assert probable_own_address(outbox, "shop") is None  # no outbox yet: nothing
    tagless = await RunningTagless(root).start()
    try:
        for n in range(3):
            await tagless.post("/v1/page", {"messageId": f"p{n}", "anonymousId": "a"}, key="k")
        with_ip = {"messageId": "t", "userId": "u", "context": {"ip": "81.2.69.142"}}
        await tagless.post("/v1/page", with_ip, key="k")
    finally:
        await tagless.stop()

    assert probable_own_address(outbox, "shop") == PeerGuess(ip="127.0.0.1", count=3, of=3)
    assert probable_own_address(outbox, "other") is None
    [warning] = own_address_warnings(root, outbox)
    assert warning.endswith(
        "; probably 127.0.0.1: the peer of 3 of the 3 recent server-key events without a"
        " customer IP"
    )


def test_check_reads_the_configured_outbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tagless check` runs without an outbox and says what to expect once events arrive."""
    root = write_config_dir(tmp_path / "config", store("[k]"))
    with pytest.raises(SystemExit) as done:
        main(["check", "--config", str(root)])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "client_ip.own_addresses: the store has server write keys" in out
    assert not (root / "tagless.db").exists()  # check never creates the outbox
