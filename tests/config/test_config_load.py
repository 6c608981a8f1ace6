"""load_config over a whole config directory: the model, defaults, merging and cross-file checks."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from router.config import (
    Config,
    ConfigError,
    ConfigIssue,
    EventFilter,
    RetryConfig,
    load_config,
)
from router.secret import Secret

TOKEN = "admin-token-1234567890"
ENV = {"TAGLESS_ADMIN_TOKEN": TOKEN}

MAIN = """\
server: {host: 127.0.0.1, port: 8080}
outbox: {path: var/tagless.db}
admin: {host: 127.0.0.1, port: 8081, token: "${TAGLESS_ADMIN_TOKEN}"}
logging: {level: info, format: json}
delivery: {}
"""

SHOP = """\
store: shop
write_keys: [shop-key]
allowed_origins: []
client_ip: {trusted_proxies: [127.0.0.1/32]}
event_names: {}
destinations:
  - {id: hook, type: webhook, url: "http://127.0.0.1:9999/hook"}
"""


def _positive(_inst: object, _attr: object, value: int) -> None:
    if value <= 0:
        raise ValueError("must be greater than 0")


@attrs.frozen
class Webhook:
    """A webhook-like plugin config, as a third-party author would write it."""

    url: str
    secret: Secret | None = None
    max_batch_size: int = attrs.field(default=500, validator=_positive)


@attrs.frozen
class FileSink:
    """A file-like plugin config."""

    path: Path


TYPES: dict[str, type] = {"webhook": Webhook, "file": FileSink}


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `config/` directory inside a temporary working directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config" / "stores").mkdir(parents=True)
    return Path("config")


def write(config_dir: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (config_dir / name).write_text(text)


def load(config_dir: Path, files: dict[str, str], env: dict[str, str] | None = None) -> Config:
    write(config_dir, files)
    return load_config(config_dir, TYPES, ENV if env is None else env)


def issues(config_dir: Path, files: dict[str, str], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(config_dir, files, env)
    return [str(issue) for issue in caught.value.errors]


def test_acceptance_example_loads(config_dir: Path) -> None:
    """The documented example loads with every default filled in."""
    config = load(config_dir, {"tagless.yaml": MAIN, "stores/shop.yaml": SHOP})

    assert config.server.port == 8080
    assert config.server.max_request_bytes == 512_000
    assert config.outbox.path == Path("var/tagless.db")
    assert config.outbox.synchronous == "full"
    assert config.admin.token.reveal() == TOKEN
    assert config.delivery == RetryConfig()
    assert config.source_dir == config_dir
    (store,) = config.stores
    assert store.store == "shop"
    assert store.file == "config/stores/shop.yaml"
    assert [(key.key.reveal(), key.kind) for key in store.write_keys] == [("shop-key", "server")]
    assert store.client_ip.trusted_proxies == ("127.0.0.1/32",)
    assert store.client_ip.headers == ("cf-connecting-ip", "x-forwarded-for", "forwarded")
    (hook,) = store.destinations
    assert (hook.id, hook.type, hook.enabled) == ("hook", "webhook", True)
    assert hook.events == EventFilter()
    assert hook.settings == Webhook(url="http://127.0.0.1:9999/hook")


def test_repo_example_config_loads() -> None:
    """The example config that `make run` serves is valid."""
    example = Path(__file__).parents[2] / "config"

    config = load_config(example, TYPES, ENV)

    (store,) = config.stores
    assert store.destinations[0].settings == FileSink(path=Path("var/delivered.jsonl"))
    assert store.write_keys[0].key.reveal() == "shop-key"


def test_an_issue_names_file_line_and_key_path(config_dir: Path) -> None:
    """A wrong type in a plugin setting is reported as file:line: key path: message."""
    shop = SHOP.replace('url: "http://127.0.0.1:9999/hook"', "url: [a, b]")

    assert issues(config_dir, {"tagless.yaml": MAIN, "stores/shop.yaml": shop}) == [
        "config/stores/shop.yaml:7: destinations[0].url: expected a string, got a list"
    ]


def test_all_errors_of_all_files_are_reported_at_once(config_dir: Path) -> None:
    """Problems in several files and sections come back together, in file and line order."""
    main = MAIN.replace("port: 8080", "port: eighty").replace("level: info", "level: loud")
    shop = SHOP.replace("store: shop", "store: Shop!").replace("url:", "urll:")
    other = "store: other\nwrite_keys: []\nextra: 1\n"

    found = issues(
        config_dir, {"tagless.yaml": main, "stores/shop.yaml": shop, "stores/z.yaml": other}
    )

    assert found == [
        "config/tagless.yaml:1: server.port: expected an integer, got a string",
        "config/tagless.yaml:4: logging.level: expected one of: debug, info, warning, error;"
        " got 'loud'",
        "config/stores/shop.yaml:1: store: must be 1 to 64 characters of a-z, 0-9, '_' or '-',"
        " got 'Shop!'",
        "config/stores/shop.yaml:7: destinations[0].urll: unknown key 'urll'; valid keys: url,"
        " secret, max_batch_size, id, type, enabled, events, consent, retry, concurrency",
        "config/stores/shop.yaml:7: destinations[0]: missing required key 'url'",
        "config/stores/z.yaml:2: write_keys: must list at least one write key",
        "config/stores/z.yaml:3: extra: unknown key 'extra'; valid keys: store, write_keys,"
        " allowed_origins, client_ip, event_names, consent, value_from, stitching, destinations",
    ]


def test_admin_section_and_token_are_required(config_dir: Path) -> None:
    """Without an admin token the config is refused."""
    assert issues(config_dir, {"tagless.yaml": "server: {port: 8080}\n"}) == [
        "config/tagless.yaml:1: missing required key 'admin'"
    ]
    assert issues(config_dir, {"tagless.yaml": "admin:\n  port: 9000\n"}) == [
        "config/tagless.yaml:2: admin: missing required key 'token'"
    ]


def test_missing_tagless_yaml_is_an_issue(config_dir: Path) -> None:
    """A directory without tagless.yaml says so instead of starting with nothing."""
    assert issues(config_dir, {}) == [
        "config/tagless.yaml: cannot read the file: No such file or directory"
    ]


def test_empty_sections_take_their_defaults(config_dir: Path) -> None:
    """A section key with nothing under it means all defaults."""
    main = "server:\noutbox:\nadmin: {token: t}\ndelivery:\n"

    config = load(config_dir, {"tagless.yaml": main})

    assert config.delivery == RetryConfig()
    assert config.stores == ()


def test_duplicate_store_names_across_files_are_errors(config_dir: Path) -> None:
    """Two files defining the same store name are refused, naming the first file."""
    other = SHOP.replace("shop-key", "other-key")

    found = issues(
        config_dir, {"tagless.yaml": MAIN, "stores/a.yaml": SHOP, "stores/b.yaml": other}
    )

    assert found == [
        "config/stores/b.yaml:1: store: store 'shop' is already defined in config/stores/a.yaml;"
        " store names must be unique"
    ]


def test_duplicate_write_keys_across_stores_name_both_files_never_the_key(
    config_dir: Path,
) -> None:
    """A write key used by two stores is refused; the message names both files, not the key."""
    other = SHOP.replace("store: shop", "store: other").replace("[shop-key]", "[k2, shop-key]")

    with pytest.raises(ConfigError) as caught:
        load(config_dir, {"tagless.yaml": MAIN, "stores/a.yaml": SHOP, "stores/b.yaml": other})

    assert caught.value.errors == [
        ConfigIssue(
            "config/stores/b.yaml",
            2,
            "write_keys[1]",
            "this write key is already used by write_keys[0] of config/stores/a.yaml;"
            " keys must be unique",
        )
    ]
    assert "shop-key" not in str(caught.value)


def test_unknown_destination_type_lists_known_types(config_dir: Path) -> None:
    """A destination type no plugin provides is refused with the installed types listed."""
    shop = SHOP.replace("type: webhook", "type: webhok")

    assert issues(config_dir, {"tagless.yaml": MAIN, "stores/shop.yaml": shop}) == [
        "config/stores/shop.yaml:7: destinations[0].type: destination 'hook' (type 'webhok'):"
        " unknown destination type 'webhok': no installed package provides it (entry-point"
        " group tagless.destinations); installed types: file, webhook; install the plugin's"
        " package or fix the type"
    ]


def test_duplicate_destination_ids_in_a_store_are_errors(config_dir: Path) -> None:
    """Two destinations of one store cannot share an id."""
    shop = SHOP + "  - {id: hook, type: file, path: out.jsonl}\n"

    assert issues(config_dir, {"tagless.yaml": MAIN, "stores/shop.yaml": shop}) == [
        "config/stores/shop.yaml:8: destinations[1].id: duplicate destination id 'hook'"
        " (also destinations[0])"
    ]


def test_retry_overrides_the_delivery_defaults_key_by_key(config_dir: Path) -> None:
    """Only the retry keys a destination gives replace the delivery defaults."""
    main = MAIN.replace("delivery: {}", "delivery: {max_attempts: 3, timeout_secs: 5}")
    shop = SHOP.replace("url:", "retry: {max_attempts: 10, max_backoff_secs: 60}, url:")

    config = load(config_dir, {"tagless.yaml": main, "stores/shop.yaml": shop})

    expected = RetryConfig(max_attempts=10, timeout_secs=5.0, max_backoff_secs=60.0)
    assert config.stores[0].destinations[0].retry == expected
    assert config.delivery == RetryConfig(max_attempts=3, timeout_secs=5.0)


def test_max_pause_secs_is_a_retry_key_of_delivery_and_of_a_destination(config_dir: Path) -> None:
    """`max_pause_secs` defaults to 300 s in delivery and a destination's retry overrides it."""
    main = MAIN.replace("delivery: {}", "delivery: {max_pause_secs: 60}")
    shop = SHOP.replace("url:", "retry: {max_pause_secs: 5}, url:")

    config = load(config_dir, {"tagless.yaml": main, "stores/shop.yaml": shop})

    assert RetryConfig().max_pause_secs == 300.0
    assert config.delivery.max_pause_secs == 60.0
    assert config.stores[0].destinations[0].retry.max_pause_secs == 5.0


def test_a_pause_cap_that_is_not_positive_is_an_error(config_dir: Path) -> None:
    """`max_pause_secs: 0` is refused at its key path, saying what would be valid."""
    main = MAIN.replace("delivery: {}", "delivery: {max_pause_secs: 0}")

    assert issues(config_dir, {"tagless.yaml": main, "stores/shop.yaml": SHOP}) == [
        "config/tagless.yaml:5: delivery.max_pause_secs: must be greater than 0, got 0.0"
    ]


def test_destination_without_retry_gets_the_delivery_defaults(config_dir: Path) -> None:
    """A destination with no retry key follows the delivery section."""
    main = MAIN.replace("delivery: {}", "delivery: {max_attempts: 3}")

    config = load(config_dir, {"tagless.yaml": main, "stores/shop.yaml": SHOP})

    assert config.stores[0].destinations[0].retry == RetryConfig(max_attempts=3)


def test_concurrency_shorthand_overrides_retry_concurrency(config_dir: Path) -> None:
    """A destination's `concurrency` sets its retry policy's concurrency."""
    shop = SHOP.replace("url:", "concurrency: 16, url:")

    config = load(config_dir, {"tagless.yaml": MAIN, "stores/shop.yaml": shop})

    assert config.stores[0].destinations[0].retry.concurrency == 16


def test_concurrency_given_twice_is_an_error(config_dir: Path) -> None:
    """Setting concurrency both on the destination and in its retry is ambiguous."""
    shop = SHOP.replace("url:", "concurrency: 16, retry: {concurrency: 2}, url:")

    assert issues(config_dir, {"tagless.yaml": MAIN, "stores/shop.yaml": shop}) == [
        "config/stores/shop.yaml:7: destinations[0].concurrency: concurrency is set both here"
        " and in retry; keep one"
    ]


def test_event_names_must_be_canonical(config_dir: Path) -> None:
    """Event name mappings accept only canonical names and list them; a filter entry that is
    no canonical name is a sender's own event name, accepted."""
    shop = SHOP.replace("event_names: {}", "event_names: {Quote Requested: lead}").replace(
        "url:", "events: {allow: [purchase, Gift Card Redeemed]}, url:"
    )

    found = issues(config_dir, {"tagless.yaml": MAIN, "stores/shop.yaml": shop})

    assert len(found) == 1
    assert found[0].startswith(
        "config/stores/shop.yaml:5: event_names: target 'lead' is not a canonical event name;"
        " valid names: add_payment_info, add_to_cart,"
    )


def test_event_names_cannot_make_a_track_event_an_identity_call(config_dir: Path) -> None:
    """Mapping a sender's event onto identify, alias or group is refused, saying why."""
    shop = SHOP.replace("event_names: {}", "event_names: {Signed In: alias}")

    assert issues(config_dir, {"tagless.yaml": MAIN, "stores/shop.yaml": shop}) == [
        "config/stores/shop.yaml:5: event_names: target 'alias' is an identity call: identify,"
        " alias and group come only from their own Segment calls; map a track event onto a"
        " conversion or custom"
    ]


def test_an_empty_filter_entry_is_refused(config_dir: Path) -> None:
    """An empty string in a filter matches nothing and is refused."""
    shop = SHOP.replace("url:", 'events: {deny: [" "]}, url:')

    [found] = issues(config_dir, {"tagless.yaml": MAIN, "stores/shop.yaml": shop})
    assert "destinations[0].events.deny: an empty entry" in found


def test_event_filter_admits_by_allow_and_deny() -> None:
    """An empty allow admits everything not denied; a non-empty allow admits only its names."""
    assert EventFilter().admits("purchase")
    assert not EventFilter(deny=("purchase",)).admits("purchase")
    assert EventFilter(allow=("purchase",)).admits("purchase")
    assert not EventFilter(allow=("purchase",)).admits("refund")


@pytest.mark.parametrize(
    ("events", "name", "source_name", "admitted"),
    [
        (EventFilter(allow=("Gift Card Redeemed",)), "custom", "Gift Card Redeemed", True),
        (EventFilter(allow=("Gift Card Redeemed",)), "custom", "Wishlist Shared", False),
        (EventFilter(deny=("Gift Card Redeemed",)), "custom", "Gift Card Redeemed", False),
        (EventFilter(deny=("Gift Card Redeemed",)), "custom", "Wishlist Shared", True),
        (EventFilter(deny=("Order Completed",)), "purchase", "Order Completed", False),
        (EventFilter(allow=("custom",), deny=("Gift Card Redeemed",)), "custom", "Other", True),
        # a sender name spelled like a canonical name is matched as the canonical name only
        (EventFilter(allow=("purchase",)), "page_view", "purchase", False),
    ],
)
def test_event_filter_matches_the_senders_own_name(
    events: EventFilter, name: str, source_name: str, admitted: bool
) -> None:
    """A filter entry that is no canonical name matches the sender's event name exactly."""
    assert events.admits(name, source_name) is admitted


@pytest.mark.parametrize(
    ("value_from", "message"),
    [
        ("[]", "value_from: must list at least one of total, revenue, value"),
        ("[total, total]", "value_from: lists a property twice: total, total"),
        ("[price]", "value_from[0]: expected one of: total, revenue, value; got 'price'"),
    ],
)
def test_value_from_lists_known_properties_once(
    config_dir: Path, value_from: str, message: str
) -> None:
    """value_from must name total, revenue or value, each at most once."""
    shop = SHOP.replace("event_names: {}", f"event_names: {{}}\nvalue_from: {value_from}")

    [found] = issues(config_dir, {"tagless.yaml": MAIN, "stores/shop.yaml": shop})
    assert found.endswith(message), found


def test_stitching_is_off_unless_enabled_and_its_window_is_positive(config_dir: Path) -> None:
    """A store stitches only when it says so; a window of 0 hours is refused."""
    shop = SHOP.replace("event_names: {}", "event_names: {}\nstitching: {window_hours: 0}")

    [found] = issues(config_dir, {"tagless.yaml": MAIN, "stores/shop.yaml": shop})
    assert found.endswith("stitching.window_hours: must be greater than 0, got 0.0"), found


def test_allowed_origins_must_be_bare_origins(config_dir: Path) -> None:
    """An origin with a path or trailing slash is refused with an example of a valid one."""
    shop = SHOP.replace("allowed_origins: []", "allowed_origins: [https://shop.example/]")

    assert issues(config_dir, {"tagless.yaml": MAIN, "stores/shop.yaml": shop}) == [
        "config/stores/shop.yaml:3: allowed_origins: 'https://shop.example/' is not an origin;"
        " write scheme://host[:port] with no path or trailing slash, e.g. https://shop.example"
    ]


def test_plugin_validators_are_reported_at_their_key(config_dir: Path) -> None:
    """A plugin's own attrs validator failing becomes an issue at its key path."""
    shop = SHOP.replace("url:", "max_batch_size: 0, url:")

    assert issues(config_dir, {"tagless.yaml": MAIN, "stores/shop.yaml": shop}) == [
        "config/stores/shop.yaml:7: destinations[0].max_batch_size: must be greater than 0"
    ]


def test_yml_store_files_are_not_silently_ignored(config_dir: Path) -> None:
    """A store file with the .yml extension is reported instead of quietly skipped."""
    assert issues(config_dir, {"tagless.yaml": MAIN, "stores/shop.yml": SHOP}) == [
        "config/stores/shop.yml: ignored: store files must end in .yaml (rename it to shop.yaml)"
    ]


def test_secrets_are_redacted_in_repr(config_dir: Path) -> None:
    """Neither the admin token, the write keys nor plugin secrets show in the config's repr."""
    shop = SHOP.replace("url:", "secret: hook-signing-secret, url:")

    config = load(config_dir, {"tagless.yaml": MAIN, "stores/shop.yaml": shop})

    shown = repr(config) + str(config)
    assert "Secret('***')" in shown
    for secret in (TOKEN, "shop-key", "hook-signing-secret"):
        assert secret not in shown


def test_the_disk_floor_defaults_to_256_mb_and_refuses_a_negative_value(config_dir: Path) -> None:
    """outbox.min_free_disk_mb is 256 unless set; 0 turns it off; below 0 is an error."""
    assert (
        load(config_dir, {"tagless.yaml": MAIN, "stores/shop.yaml": SHOP}).outbox.min_free_disk_mb
        == 256
    )
    main = MAIN.replace("outbox: {path: var/tagless.db}", "outbox: {min_free_disk_mb: -1}")
    assert issues(config_dir, {"tagless.yaml": main, "stores/shop.yaml": SHOP}) == [
        "config/tagless.yaml:2: outbox.min_free_disk_mb: must be 0 (off) or more, got -1"
    ]


def test_ingest_processes_out_of_range_is_an_error_saying_what_is_valid(config_dir: Path) -> None:
    main = MAIN.replace(
        "port: 8080}",
        "port: 8080, ingest_processes: 65, delivery_processes: -1, delivery_nice: 20}",
    )

    assert issues(config_dir, {"tagless.yaml": main, "stores/shop.yaml": SHOP}) == [
        "config/tagless.yaml:1: server.ingest_processes: must be 0 (ingest in the main process)"
        " to 64 ingest processes, got 65",
        "config/tagless.yaml:1: server.delivery_nice: must be a nice increment from 0 (as"
        " ingest) to 19, got 20",
        "config/tagless.yaml:1: server.delivery_processes: must be 0 (delivery in the main"
        " process) to 64 delivery processes, got -1",
    ]
