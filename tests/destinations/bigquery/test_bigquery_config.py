"""BigQuery config: the issue's keys load as written; mistakes are file:line errors in
``tagless check``."""

from __future__ import annotations

from pathlib import Path

import pytest

from destinations.bigquery import BigQueryConfig, BigQueryDestination
from router.cli import main
from router.config import ConfigError, load_config
from router.plugins import config_classes, discover
from router.testing.google_token import make_service_account

#: The issue's example entry, verbatim.
ENTRY = """\
  - id: warehouse
    type: bigquery
    project: my-project
    dataset: tagless
    table: events
    credentials: {service_account_file: ${GOOGLE_SA_FILE}}
    endpoint: "https://bigquery.googleapis.com"
    token_endpoint: "https://oauth2.googleapis.com/token"
"""


def write_config(root: Path, entry: str = ENTRY) -> Path:
    (root / "stores").mkdir(parents=True, exist_ok=True)
    (root / "tagless.yaml").write_text(
        f"outbox: {{path: {root / 'tagless.db'}}}\nadmin: {{token: t}}\n"
    )
    (root / "stores" / "shop.yaml").write_text(
        f"store: shop\nwrite_keys: [k]\ndestinations:\n{entry}"
    )
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_the_issue_example_loads_with_the_documented_defaults(tmp_path: Path) -> None:
    """The keys as the issue spells them; max_batch_size defaults to 500."""
    key = tmp_path / "sa.json"
    make_service_account(key)
    config = load_config(
        write_config(tmp_path / "config"),
        config_classes(discover()),
        {"GOOGLE_SA_FILE": str(key)},
    )
    settings = config.stores[0].destinations[0].settings
    assert isinstance(settings, BigQueryConfig)
    assert settings.credentials.service_account_file == key
    assert (settings.project, settings.dataset, settings.table) == (
        "my-project",
        "tagless",
        "events",
    )
    assert settings.max_batch_size == 500
    assert settings.insert_url == (
        "https://bigquery.googleapis.com/bigquery/v2/projects/my-project/datasets/tagless"
        "/tables/events/insertAll"
    )


def test_bigquery_loads_through_the_entry_point_group() -> None:
    """bigquery is discovered like any plugin (its line in pyproject.toml)."""
    assert discover()["bigquery"] is BigQueryDestination


def test_check_reports_a_missing_key_file_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """tagless check: the credentials line, the key path, what is wrong; exit 2."""
    monkeypatch.setenv("GOOGLE_SA_FILE", str(tmp_path / "nowhere.json"))
    config = write_config(tmp_path / "config")
    code, _, err = run(capsys, "check", "--config", str(config))
    assert code == 2
    store = config / "stores" / "shop.yaml"
    assert (
        f"{store}:9: destinations[0].credentials.service_account_file: no such file:"
        f" {tmp_path / 'nowhere.json'}"
    ) in err


def test_check_reports_a_file_that_is_not_a_service_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OAuth client file where a service account key belongs is named for what it is."""
    wrong = tmp_path / "client_secret.json"
    wrong.write_text('{"installed": {"client_id": "x.apps.googleusercontent.com"}}')
    monkeypatch.setenv("GOOGLE_SA_FILE", str(wrong))
    code, _, err = run(capsys, "check", "--config", str(write_config(tmp_path / "config")))
    assert code == 2
    assert ":9: destinations[0].credentials.service_account_file: " in err
    assert "is not a service account key" in err and "an OAuth client file" in err


def test_check_passes_with_a_real_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generated service-account key file: check says ok."""
    key = tmp_path / "sa.json"
    make_service_account(key)
    monkeypatch.setenv("GOOGLE_SA_FILE", str(key))
    code, out, _ = run(capsys, "check", "--config", str(write_config(tmp_path / "config")))
    assert code == 0, out
    assert out.rstrip().endswith("ok (1 store, 1 destination)")


@pytest.mark.parametrize(
    ("line", "path", "message"),
    [
        ("    project: My_Project\n", "project", "expected a Google Cloud project ID"),
        ("    dataset: tag-less\n", "dataset", "expected a dataset ID of letters, digits"),
        ("    table: a/b\n", "table", "expected a table ID of letters"),
        ("    max_batch_size: 50001\n", "max_batch_size", "expected 1 to 50000"),
        ("    endpoint: bigquery.googleapis.com\n", "endpoint", "expected an http:// or https://"),
        ("    audit_table: a/b\n", "audit_table", "expected a table ID of letters"),
        ("    audit_flush_secs: 0\n", "audit_flush_secs", "expected a number above 0"),
        ("    audit_max_buffered_rows: 0\n", "audit_max_buffered_rows", "expected 1 or more"),
    ],
)
def test_a_wrong_setting_is_reported_at_its_key(
    tmp_path: Path, line: str, path: str, message: str
) -> None:
    """Each setting is checked on its own and named in the error."""
    entry = (
        "  - id: warehouse\n    type: bigquery\n    project: my-project\n    dataset: tagless\n"
        "    table: events\n    credentials: {client_id: c, client_secret: s, refresh_token: r}\n"
    )
    key = line.split(":")[0].strip()
    entry = "".join(row for row in entry.splitlines(True) if not row.strip().startswith(key + ":"))
    with pytest.raises(ConfigError) as failed:
        load_config(write_config(tmp_path, entry + line), config_classes(discover()))
    [issue] = failed.value.errors
    assert issue.path == f"destinations[0].{path}"
    assert message in issue.message


def test_an_audit_table_that_is_the_events_table_is_refused(tmp_path: Path) -> None:
    """audit_table naming the events table would mix two schemas in one table: an error."""
    entry = (
        "  - id: warehouse\n    type: bigquery\n    project: my-project\n    dataset: tagless\n"
        "    table: events\n    audit_table: events\n"
        "    credentials: {client_id: c, client_secret: s, refresh_token: r}\n"
    )
    with pytest.raises(ConfigError) as failed:
        load_config(write_config(tmp_path, entry), config_classes(discover()))
    [issue] = failed.value.errors
    assert issue.path == "destinations[0]"
    assert "audit_table 'events' is the events table" in issue.message
