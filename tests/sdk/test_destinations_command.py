"""`tagless destinations` lists every installed type, its keys from its config class, and
the plugins that failed to load."""

from __future__ import annotations

import json
import re
from pathlib import Path

import attrs
import pytest

from router.catalog import config_keys
from router.cli import main
from router.plugins import discover
from tests.sdk.installed import install_broken, install_ping

BUILT_INS = ("bigquery", "file", "ga4", "google_ads", "meta_capi", "spotify_capi", "webhook")
ROOT = Path(__file__).resolve().parents[2]


def listing(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main(["destinations", *args])
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_json_lists_every_built_in_with_its_config_keys(capsys: pytest.CaptureFixture[str]) -> None:
    """Each built-in appears with its package, and its keys are its config class's fields,
    each with a type, a default or 'required', and a description."""
    listed = {item["name"]: item for item in json.loads(listing(capsys, "--json"))}
    assert set(BUILT_INS) <= set(listed)
    for name in BUILT_INS:
        item = listed[name]
        assert (item["distribution"], item["error"]) == ("tagless", "")
        fields = [f.alias or f.name for f in attrs.fields(discover()[name].config_class)]
        top_level = [key["name"] for key in item["config_keys"] if "." not in key["name"]]
        assert top_level == fields
        for key in item["config_keys"]:
            assert key["type"] and key["description"], (name, key["name"])
            if key["required"]:
                assert key["default"] is None
    meta = listed["meta_capi"]
    assert meta["batch_limit"] == 1000 and meta["test_mode"] is True
    assert "purchase" in meta["supported_events"]
    [token] = [key for key in meta["config_keys"] if key["name"] == "access_token"]
    assert (token["type"], token["required"]) == ("secret", True)
    [mode] = [key for key in listed["google_ads"]["config_keys"] if key["name"] == "mode"]
    assert (mode["type"], mode["default"]) == ("one of data_manager, click_upload", "data_manager")
    assert listed["webhook"]["supported_events"] is None  # all events


def test_text_shows_keys_and_a_broken_plugin_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plugin that failed to load is listed with its package and error; a good third-party
    plugin's keys come from its attrs metadata."""
    site = tmp_path / "site"
    install_broken(site, monkeypatch, "ImportError('no vendor_sdk')")
    install_ping(site, monkeypatch)
    text = listing(capsys)
    assert (
        "broken  (tagless-destination-broken 0.3.0)\n"
        "  FAILED TO LOAD: import failed: ImportError: no vendor_sdk" in text
    )
    assert re.search(r"ping  \(tagless-destination-ping 1\.2\.0\)\n  events: all\n", text)
    assert re.search(r"endpoint +str; required\n +where to post", text)
    assert re.search(r"timeout_secs +float; default 5\.0\n", text)
    for name in BUILT_INS:
        assert f"\n{name}  (tagless " in "\n" + text
    data = {item["name"]: item for item in json.loads(listing(capsys, "--json"))}
    assert data["broken"]["error"] == "import failed: ImportError: no vendor_sdk"


@pytest.mark.parametrize("name", BUILT_INS)
def test_each_readme_key_table_matches_the_config_class(name: str) -> None:
    """A built-in's README lists exactly the top-level keys of its config class."""
    readme = (ROOT / "destinations" / name / "README.md").read_text()
    table = readme[readme.index("| key | default | meaning |") :].split("\n\n")[0]
    documented = re.findall(r"^\| `([a-z_]+)` \|", table, re.M)
    keys = [key.name for key in config_keys(discover()[name].config_class) if "." not in key.name]
    assert sorted(documented) == sorted(keys)
