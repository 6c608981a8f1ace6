"""The ``tagless`` CLI as a newcomer meets it: no needless secrets, plain help, clear answers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from router.cli import main
from router.clock import FakeClock
from router.destination import Outcome
from router.outbox.base import NewEvent
from router.outbox.policy import RetryPolicy
from router.outbox.sqlite import SqliteOutbox

TAGLESS_YAML = (
    "outbox: {path: %s}\n"
    "admin: {token: '${TAGLESS_ADMIN_TOKEN}'}\n"  # the example's form: read from the environment
)


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example's shape: an admin token from the environment, which is NOT set here."""
    monkeypatch.delenv("TAGLESS_ADMIN_TOKEN", raising=False)
    (tmp_path / "stores").mkdir()
    (tmp_path / "tagless.yaml").write_text(TAGLESS_YAML % (tmp_path / "tagless.db"))
    (tmp_path / "stores" / "shop.yaml").write_text(
        "store: shop\nwrite_keys: [k]\n"
        f"destinations: [{{id: archive, type: file, path: {tmp_path / 'out.jsonl'}}}]\n"
    )
    yield tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI; return its exit code, stdout and stderr."""
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def dead_letter_outbox(path: Path) -> None:
    """An outbox at ``path`` holding one event dead-lettered for ``archive``."""

    async def fill() -> None:
        box = SqliteOutbox(path, clock=FakeClock(1_796_000_000.0))
        await box.open()
        try:
            body = b'{"event_id":"e-1","name":"purchase"}'
            await box.append([NewEvent("shop", "e-1", 1_796_000_000.0, ("archive",), body)])
            claim = await box.claim("shop", "archive", 10)
            assert claim is not None
            rejected = Outcome("rejected", "http_400", 400, detail="bad")
            await box.settle(claim, [(claim.items[0], rejected)], RetryPolicy())
        finally:
            await box.close()

    asyncio.run(fill())


def test_outbox_commands_run_without_the_admin_token(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status, dead-letters and replay never use the admin listener, so they need no token."""
    dead_letter_outbox(config_dir / "tagless.db")
    code, out, err = run(capsys, "status", "--config", str(config_dir))
    assert (code, err) == (0, "")
    assert re.search(r"shop\s+archive\s+0\s+0\s+1", out)
    code, out, _ = run(capsys, "dead-letters", "--config", str(config_dir), "--store", "shop")
    assert code == 0
    [letter] = [orjson.loads(line) for line in out.splitlines()]
    assert letter["event_id"] == "e-1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", letter["updated_at"])
    code, out, _ = run(capsys, "replay", "--config", str(config_dir), "--store", "shop")
    assert (code, out) == (0, "replayed 1 dead letter\n")


def test_check_passes_without_the_token_and_says_serve_needs_it(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check validates the config without the token, warns that serve needs it, and counts
    in the singular where there is one."""
    code, out, _ = run(capsys, "check", "--config", str(config_dir))
    assert code == 0
    assert "TAGLESS_ADMIN_TOKEN is not set; 'tagless serve' needs it" in out
    assert out.rstrip().endswith("ok (1 store, 1 destination)")


def test_serve_still_refuses_to_start_without_the_token(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """serve needs every secret: a missing admin token is a config error naming the variable."""
    code, _, err = run(capsys, "serve", "--config", str(config_dir))
    assert code == 2
    assert "admin.token: environment variable TAGLESS_ADMIN_TOKEN is not set" in err


def test_a_command_that_uses_a_missing_secret_names_the_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret left unset fails where it is used, naming its variable, without a traceback."""
    monkeypatch.delenv("HOOK_SECRET", raising=False)
    (tmp_path / "stores").mkdir()
    (tmp_path / "tagless.yaml").write_text("admin: {token: t}\n")
    (tmp_path / "stores" / "shop.yaml").write_text(
        "store: shop\nwrite_keys: [k]\ndestinations:\n"
        "  - {id: hook, type: webhook, url: 'http://127.0.0.1:9/h', secret: '${HOOK_SECRET}'}\n"
    )
    argv = ["send-test", "--config", str(tmp_path), "--store", "shop", "--destination", "hook"]
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err == "error: environment variable HOOK_SECRET is not set, and this needs it\n"


def test_send_test_without_a_test_mode_says_so_first_and_sends_nothing(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A destination with no test mode: one line saying so and offering --dry-run, no payload."""
    argv = ["--config", str(config_dir), "--store", "shop", "--destination", "archive"]
    code, out, err = run(capsys, "send-test", *argv)
    assert (code, out) == (1, "")
    assert err.startswith("archive (file) has no test mode: nothing was sent.")
    assert "--dry-run" in err
    assert not (config_dir / "out.jsonl").exists()


def test_send_test_dry_run_prints_the_redacted_payload_and_sends_nothing(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run works for every destination: the payload, identity redacted, nothing written."""
    argv = ["--config", str(config_dir), "--store", "shop", "--destination", "archive"]
    code, out, _ = run(capsys, "send-test", *argv, "--dry-run")
    assert code == 0
    payload = orjson.loads(out.split("\n", 1)[1])
    assert payload["name"] == "purchase"
    assert payload["emails"] == ["<redacted>"]
    assert not (config_dir / "out.jsonl").exists()


def test_help_is_plain_text_and_every_option_says_what_it_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No reStructuredText markup in --help, and --store/--destination are explained."""
    for argv in (["--help"], ["send-test", "--help"], ["replay", "--help"]):
        code, out, _ = run(capsys, *argv)
        assert code == 0
        assert "``" not in out and "`" not in out
    _, out, _ = run(capsys, "dead-letters", "--help")
    assert "--store STORE         the store's name" in out
    assert "--destination DESTINATION\n" in out and "only this destination's id" in out


def test_a_key_file_path_from_an_unset_variable_blocks_only_what_builds_the_destination(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A destination whose service_account_file comes from an unset variable: status runs,
    check passes naming the variable, serve refuses with the variable's name."""
    monkeypatch.delenv("GOOGLE_SA_FILE", raising=False)
    (tmp_path / "stores").mkdir()
    (tmp_path / "tagless.yaml").write_text(
        f"outbox: {{path: {tmp_path / 'db'}}}\nadmin: {{token: t}}\n"
    )
    (tmp_path / "stores" / "shop.yaml").write_text(
        "store: shop\nwrite_keys: [k]\ndestinations:\n"
        "  - {id: warehouse, type: bigquery, project: p, dataset: d, table: t,\n"
        "     credentials: {service_account_file: '${GOOGLE_SA_FILE}'}}\n"
    )
    dead_letter_outbox(tmp_path / "db")  # any outbox will do: status must open it
    code, out, err = run(capsys, "status", "--config", str(tmp_path))
    assert (code, err) == (0, "")
    code, out, _ = run(capsys, "check", "--config", str(tmp_path))
    assert code == 0
    assert "GOOGLE_SA_FILE is not set; 'tagless serve' needs it" in out
    code, _, err = run(capsys, "serve", "--config", str(tmp_path))
    assert code == 2
    assert "credentials.service_account_file: environment variable GOOGLE_SA_FILE is not set" in err
