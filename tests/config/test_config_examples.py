"""Every file in config/examples is a valid store or destination fragment (``make check``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import load_config
from router.config.examples import as_store, check, is_fragment, main, placeholders
from router.plugins import config_classes, discover

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "config" / "examples").glob("*.yaml"))
BASE = ROOT / "config" / "tagless.yaml"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_every_example_is_valid(example: Path) -> None:
    """Each example loads and its destinations build with the shipped tagless.yaml."""
    result = check(example, BASE)
    assert result.problems == []
    assert result.warnings == []


def test_the_per_platform_examples_are_fragments_and_all_platforms_is_a_store() -> None:
    """Copying two platform examples into one store no longer repeats a store name and key:
    they are destination entries; all-platforms.yaml is the one whole store."""
    kinds = {path.name: is_fragment(path.read_text()) for path in EXAMPLES}
    assert kinds == {
        "all-platforms.yaml": False,
        "bigquery.yaml": True,
        "ga4.yaml": True,
        "google_ads.yaml": True,
        "meta_capi.yaml": True,
        "spotify_capi.yaml": True,
    }


def test_all_platforms_uses_every_built_in_destination(tmp_path: Path) -> None:
    """all-platforms.yaml has one destination of every installed built-in type."""
    example = ROOT / "config" / "examples" / "all-platforms.yaml"
    (tmp_path / "stores").mkdir()
    (tmp_path / "tagless.yaml").write_text(BASE.read_text())
    (tmp_path / "stores" / "shop.yaml").write_text(example.read_text())
    plugins = discover()
    env = placeholders(example.read_text(), BASE.read_text())
    [store] = load_config(tmp_path, config_classes(plugins), env).stores
    assert sorted(d.type for d in store.destinations) == sorted(plugins)


def test_two_fragments_pasted_into_one_store_load_together(tmp_path: Path) -> None:
    """The point of fragments: several pasted under one `destinations:` make one valid store."""
    entries = "".join(
        (ROOT / "config" / "examples" / name).read_text() for name in ("ga4.yaml", "meta_capi.yaml")
    )
    (tmp_path / "stores").mkdir()
    (tmp_path / "tagless.yaml").write_text("admin: {token: t}\n")
    (tmp_path / "stores" / "shop.yaml").write_text(as_store(entries))
    env = placeholders(entries)
    [store] = load_config(tmp_path, config_classes(discover()), env).stores
    assert [d.id for d in store.destinations] == ["ga4", "meta"]


def test_a_broken_fragment_is_reported_at_its_own_file_and_line(tmp_path: Path) -> None:
    """A mistake in a fragment names the fragment's path and line, not the wrapper's."""
    broken = tmp_path / "ga4.yaml"
    text = (ROOT / "config" / "examples" / "ga4.yaml").read_text()
    broken.write_text(text.replace("max_batch_size: 25 ", "max_batch_size: 26 "))
    line = 1 + text.splitlines().index(
        next(row for row in text.splitlines() if "max_batch_size: 25" in row)
    )
    result = check(broken, BASE)
    assert result.problems == [
        f"{broken}:{line}: destinations[0].max_batch_size: expected 1 to 25, got 26"
    ]


def test_make_check_fails_on_a_broken_example_and_names_the_good_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command ``make check`` runs exits 2 when one example is broken and still reports
    the valid ones as ``<file>: ok``."""
    broken = tmp_path / "webhook.yaml"
    broken.write_text("- id: hook\n  type: webhook\n  url: ftp://example.com/x\n")
    good = ROOT / "config" / "examples" / "meta_capi.yaml"
    assert main([str(good), str(broken)]) == 2
    captured = capsys.readouterr()
    assert f"{good}: ok (fragment, 1 destination)" in captured.out
    assert f"{broken}:3: destinations[0].url: expected an http:// or https:// URL" in captured.err
