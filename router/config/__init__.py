"""Loading ``tagless.yaml`` and ``stores/*.yaml`` into frozen, validated config classes.

Every problem of every file is collected first and raised once as a ``ConfigError`` whose
issues name the file, the line and the key path. ``${VAR}`` references in values are
replaced from the environment after safe parsing. Relative paths (``outbox.path``, a file
destination's ``path``) are relative to the working directory, not to the config directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from router.config._env import interpolate
from router.config._plugins import (
    PluginNotes,
    RefusedStore,
    is_builtin,
    leave_out,
    name_plugin,
    unusable_type,
)
from router.config._structure import INVALID, Invalid, describe, structure_class, text_of
from router.config._yaml import Map, Node, Report, Scalar, Seq, child_path, parse
from router.config.model import (
    AdminConfig,
    ClientIpConfig,
    Config,
    ConfigError,
    ConfigIssue,
    DestinationConfig,
    EventFilter,
    LoggingConfig,
    OutboxConfig,
    RetryConfig,
    ServerConfig,
    StoreConfig,
    UnresolvedSettings,
    destination_id,
    positive,
)
from router.identity.consent_policy import ConsentPolicy

__all__ = [
    "AdminConfig",
    "ClientIpConfig",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "ConsentPolicy",
    "DestinationConfig",
    "EventFilter",
    "LoggingConfig",
    "OutboxConfig",
    "PluginNotes",
    "RefusedStore",
    "RetryConfig",
    "ServerConfig",
    "StoreConfig",
    "UnresolvedSettings",
    "load_config",
    "load_config_isolating_plugins",
]

#: Keys of a destination entry that Tagless reads; every other key belongs to the plugin.
GENERIC_DESTINATION_KEYS = (
    "id",
    "type",
    "enabled",
    "events",
    "consent",
    "retry",
    "concurrency",
)
_HEAD_KEYS = frozenset(GENERIC_DESTINATION_KEYS) - {"retry"}


def load_config(
    directory: Path,
    destination_types: Mapping[str, type],
    env: Mapping[str, str] | None = None,
    *,
    lazy_secrets: bool = False,
    plugins: PluginNotes | None = None,
) -> Config:
    """Read ``directory/tagless.yaml`` and every ``directory/stores/*.yaml`` (sorted).

    ``destination_types`` maps a destination ``type`` to the plugin's attrs config class;
    ``env`` (default ``os.environ``) feeds ``${VAR}`` references. Raises ``ConfigError``
    listing every problem found. With ``lazy_secrets``, a secret whose variable is not set
    loads as :meth:`Secret.unset` and fails only when revealed: commands that need no
    secret (status, dead letters, check, ...) then run without it.
    """
    config, refused = _load(directory, destination_types, env, lazy_secrets, plugins, False)
    assert not refused  # without isolation, a store's plugin problem is a ConfigError
    return config


def load_config_isolating_plugins(
    directory: Path,
    destination_types: Mapping[str, type],
    plugins: PluginNotes,
    env: Mapping[str, str] | None = None,
) -> tuple[Config, list[RefusedStore]]:
    """Like :func:`load_config` (secrets read strictly), for serving: a store whose only
    problems are destination types that are not installed or whose plugin is broken is left
    out and returned with its issues, so that one broken plugin never stops the other stores."""
    return _load(directory, destination_types, env, False, plugins, True)


def _load(
    directory: Path,
    destination_types: Mapping[str, type],
    env: Mapping[str, str] | None,
    lazy_secrets: bool,
    plugins: PluginNotes | None,
    isolate: bool,
) -> tuple[Config, list[RefusedStore]]:
    environ = os.environ if env is None else env
    notes = plugins or PluginNotes()
    loader = _Loader(Path(directory), destination_types, environ, lazy_secrets, notes, isolate)
    config = loader.load()
    issues = [issue for report in loader.reports for issue in _by_line(report)]
    if issues or config is INVALID:
        raise ConfigError(issues)
    return config, loader.refused


@attrs.frozen(kw_only=True)
class _DestinationHead:
    """The generic keys of a destination entry, except ``retry`` (merged by hand)."""

    id: str = attrs.field(validator=destination_id)
    type: str
    enabled: bool = True
    events: EventFilter = attrs.Factory(EventFilter)
    consent: ConsentPolicy = attrs.Factory(ConsentPolicy)
    concurrency: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(positive)
    )


@attrs.frozen
class _StoreFile:
    """One parsed store file, kept for the checks that span files."""

    tree: Map
    report: Report
    store: StoreConfig | Invalid
    #: The store without its destinations, for a store refused for a plugin (``isolate``).
    without_destinations: StoreConfig | Invalid = INVALID


@attrs.define
class _Loader:
    directory: Path
    types: Mapping[str, type]
    env: Mapping[str, str]
    lazy_secrets: bool = False
    plugins: PluginNotes = attrs.Factory(PluginNotes)
    isolate: bool = False
    reports: list[Report] = attrs.Factory(list)
    #: Issues of destinations whose type cannot be used, by store file.
    plugin_issues: dict[str, list[ConfigIssue]] = attrs.Factory(dict)
    #: The stores left out (``isolate``).
    refused: list[RefusedStore] = attrs.Factory(list)

    def load(self) -> Config | Invalid:
        main = self._main()
        defaults = RetryConfig() if main is INVALID else main.delivery
        files = [self._store(path, defaults) for path in self._store_paths()]
        parsed = [file for file in files if file is not None]
        _check_unique(parsed)
        if self.isolate:
            built = [(file.report, file.without_destinations) for file in parsed]
            self.refused = leave_out(built, self.plugin_issues)
        stores = [file.store for file in parsed if file.store is not INVALID]
        if main is INVALID or len(stores) + len(self.refused) != len(files):
            return INVALID
        return attrs.evolve(main, stores=tuple(stores))

    def _main(self) -> Config | Invalid:
        tree, report = self._read(self.directory / "tagless.yaml")
        if tree is None:
            return INVALID
        given = {"stores": (), "source_dir": self.directory}
        return structure_class(tree, Config, "", report, given=given)

    def _store_paths(self) -> list[Path]:
        folder = self.directory / "stores"
        for ignored in sorted(folder.glob("*.yml")):
            message = f"ignored: store files must end in .yaml (rename it to {ignored.stem}.yaml)"
            self._report(ignored).add(None, "", message)
        return sorted(folder.glob("*.yaml"))

    def _store(self, path: Path, defaults: RetryConfig) -> _StoreFile | None:
        tree, report = self._read(path)
        if tree is None:
            return None
        destinations = self._destinations(tree.get("destinations"), defaults, report)
        given = {
            "destinations": () if destinations is INVALID else destinations,
            "file": report.file,
        }
        store = structure_class(
            tree, StoreConfig, "", report, given=given, extra_keys=("destinations",)
        )
        if store is not INVALID:
            _check_browser_keys(tree, store, report)
        return _StoreFile(tree, report, INVALID if destinations is INVALID else store, store)

    def _report(self, path: Path) -> Report:
        report = Report(str(path))
        self.reports.append(report)
        return report

    def _read(self, path: Path) -> tuple[Map | None, Report]:
        report = self._report(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            report.add(None, "", "not UTF-8 text")
            return None, report
        except OSError as exc:
            report.add(None, "", f"cannot read the file: {exc.strerror or exc}")
            return None, report
        tree = parse(text, report)
        if tree is None:
            return (None if report.issues else Map((), 1)), report
        if not isinstance(tree, Map):
            message = f"expected a mapping at the top of the file, got {describe(tree)}"
            report.add(tree.line, "", message)
            return None, report
        interpolated = interpolate(tree, self.env, "", report, lazy=self.lazy_secrets)
        assert isinstance(interpolated, Map)  # interpolation keeps the shape of the tree
        return interpolated, report

    def _destinations(
        self, node: Node | None, defaults: RetryConfig, report: Report
    ) -> tuple[DestinationConfig, ...] | Invalid:
        if node is None or (isinstance(node, Scalar) and node.value is None):
            return ()
        if not isinstance(node, Seq):
            report.add(node.line, "destinations", f"expected a list, got {describe(node)}")
            return INVALID
        built = [
            self._destination(item, child_path("destinations", i), defaults, report)
            for i, item in enumerate(node.items)
        ]
        _check_ids(node, report)
        valid = [item for item in built if item is not INVALID]
        return INVALID if len(valid) != len(built) else tuple(valid)

    def _destination(
        self, node: Node, path: str, defaults: RetryConfig, report: Report
    ) -> DestinationConfig | Invalid:
        if not isinstance(node, Map):
            if not (isinstance(node, Scalar) and node.broken):
                report.add(node.line, path, f"expected a mapping, got {describe(node)}")
            return INVALID
        generic = tuple(e for e in node.entries if e.key in _HEAD_KEYS)
        head = structure_class(Map(generic, node.line), _DestinationHead, path, report)
        retry = _retry(node, path, defaults, report)
        settings = self._settings(node, path, report)
        if head is INVALID or retry is INVALID or settings is INVALID:
            return INVALID
        return DestinationConfig(
            id=head.id,
            type=head.type,
            enabled=head.enabled,
            events=head.events,
            consent=head.consent,
            retry=retry
            if head.concurrency is None
            else attrs.evolve(retry, concurrency=head.concurrency),
            settings=settings,
        )

    def _settings(self, node: Map, path: str, report: Report) -> Any:
        type_node = node.get("type")
        name = None if type_node is None else text_of(type_node)
        if type_node is None or name is None:
            return INVALID  # the generic keys report a missing or non-string type
        plugin = self.types.get(name)
        if plugin is None:
            line, where = type_node.line, child_path(path, "type")
            issue = unusable_type(node, name, line, where, report, self.types, self.plugins)
            issue_list = self.plugin_issues.setdefault(report.file, [])
            issue_list.append(issue)
            return INVALID
        before = len(report.issues)
        # Read lazily, settings that cannot be built because a variable is not set (a key
        # file's path, say) are left unresolved, with what else they would report: commands
        # that never build the destination run without them; the others name the variable.
        own = Report(report.file)
        settings = plugin_settings(node, plugin, path, own, name)
        if self.lazy_secrets and own.unset:
            return UnresolvedSettings(tuple(dict.fromkeys(own.unset)))
        report.issues.extend(own.issues)
        name_plugin(report, before, node, name, self.plugins)
        if not is_builtin(name, self.plugins) or settings is CRASHED:
            # a third-party plugin's rejection, or a config class that crashed, is the
            # plugin's problem: the store is left out and the others serve
            self.plugin_issues.setdefault(report.file, []).extend(report.issues[before:])
        return INVALID if settings is CRASHED else settings


#: What :func:`plugin_settings` returns for a config class that raised something else than a
#: ValueError: the plugin is broken, not the settings.
CRASHED: Final = object()


def plugin_settings(node: Map, plugin: type, path: str, report: Report, name: str) -> Any:
    """A destination's settings built by its config class; a class that crashes (a plugin's
    bug) is reported at the destination, as CRASHED, with the exception's type only: its text
    may echo the settings, secrets included, and config errors are printed and logged."""
    try:
        return structure_class(node, plugin, path, report, extra_keys=GENERIC_DESTINATION_KEYS)
    except Exception as exc:  # any bug of a third party's code: reported, not raised
        message = (
            f"the config class of destination type {name!r} failed on these settings:"
            f" {type(exc).__name__} (a bug of the plugin; its message is not shown, since it"
            " may quote the settings)"
        )
        report.add(node.line, path, message)
        return CRASHED


def _retry(node: Map, path: str, defaults: RetryConfig, report: Report) -> RetryConfig | Invalid:
    """The destination's retry policy: the ``delivery`` defaults with its own keys on top."""
    retry_node = node.get("retry")
    if retry_node is None:
        return defaults
    retry_path = child_path(path, "retry")
    parsed = structure_class(retry_node, RetryConfig, retry_path, report)
    if parsed is INVALID:
        return INVALID
    given = retry_node.keys() if isinstance(retry_node, Map) else []
    concurrency = node.get("concurrency")
    if concurrency is not None and "concurrency" in given:
        message = "concurrency is set both here and in retry; keep one"
        report.add(concurrency.line, child_path(path, "concurrency"), message)
        return INVALID
    return attrs.evolve(defaults, **{key: getattr(parsed, key) for key in given})


def _check_ids(node: Seq, report: Report) -> None:
    """Destination ids are unique within a store: they key its delivery state."""
    seen: dict[str, int] = {}
    for i, item in enumerate(node.items):
        id_node = item.get("id") if isinstance(item, Map) else None
        name = None if id_node is None else text_of(id_node)
        if id_node is None or name is None:
            continue
        if name in seen:
            path = child_path(child_path("destinations", i), "id")
            report.add(
                id_node.line,
                path,
                f"duplicate destination id {name!r} (also destinations[{seen[name]}])",
            )
        else:
            seen[name] = i


def _check_unique(files: list[_StoreFile]) -> None:
    """Store names and write keys are unique across files; messages never show a key."""
    _check_store_names(files)
    _check_write_keys(files)


def _check_store_names(files: list[_StoreFile]) -> None:
    first_file: dict[str, str] = {}
    for file in files:
        node = file.tree.get("store")
        name = None if node is None else text_of(node)
        if node is None or name is None:
            continue
        if name in first_file:
            message = f"store {name!r} is already defined in {first_file[name]}"
            file.report.add(node.line, "store", message + "; store names must be unique")
        first_file.setdefault(name, file.report.file)


def _check_write_keys(files: list[_StoreFile]) -> None:
    first_use: dict[str, tuple[_StoreFile, int]] = {}
    for file in files:
        for i, node, key in _write_keys(file.tree):
            if key not in first_use:
                first_use[key] = (file, i)
                continue
            other, j = first_use[key]
            where = f"write_keys[{j}]" + ("" if other is file else f" of {other.report.file}")
            message = f"this write key is already used by {where}"
            file.report.add(
                node.line, child_path("write_keys", i), message + "; keys must be unique"
            )


def _write_keys(tree: Map) -> list[tuple[int, Node, str]]:
    """(index, node, key text) of each write key: a plain string or a ``{key, kind}`` entry."""
    node = tree.get("write_keys")
    if not isinstance(node, Seq):
        return []
    found = []
    for i, item in enumerate(node.items):
        key = item.get("key") if isinstance(item, Map) else item
        text = None if key is None else text_of(key)
        if key is not None and text:
            found.append((i, key, text))
    return found


def _check_browser_keys(tree: Map, store: StoreConfig, report: Report) -> None:
    """A browser key needs allowed_origins: pages of other sites must not post with it."""
    if store.allowed_origins:
        return
    node = tree.get("write_keys")
    for i, key in enumerate(store.write_keys):
        if key.kind == "browser" and isinstance(node, Seq):
            report.add(
                node.items[i].line,
                child_path("write_keys", i),
                "a browser key needs allowed_origins (the pages that may send with it), "
                "e.g. allowed_origins: [https://shop.example]",
            )


def _by_line(report: Report) -> list[ConfigIssue]:
    return sorted(report.issues, key=lambda issue: issue.line or 0)
