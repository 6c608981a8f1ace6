"""Discovers destination plugins through the ``tagless.destinations`` entry-point group.

A plugin that cannot be used (its import fails, it is not a ``Destination``, it needs another
plugin API) is kept with its error instead of stopping discovery: only the stores that use
it are refused, and the error names the plugin's distribution and version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import attrs
import structlog

from router.config import PluginNotes, RefusedStore
from router.destination import Destination
from router.sdk import API_VERSION

GROUP = "tagless.destinations"


class PluginError(Exception):
    """An installed plugin that cannot be used; names the entry point and why."""


@attrs.frozen
class Plugin:
    """One entry point of the group: where it comes from, and its class or why there is none."""

    name: str
    target: str
    distribution: str
    version: str
    destination: type[Destination[Any]] | None = None
    error: str = ""

    @property
    def origin(self) -> str:
        """``distribution version``, as ``pip list`` shows it."""
        return f"{self.distribution} {self.version}"

    @property
    def problem(self) -> str:
        """One sentence for a store that uses this broken plugin."""
        return (
            f"plugin {self.name!r} ({self.target}) from {self.origin} cannot be used:"
            f" {self.error}; fix or reinstall {self.distribution}"
        )


@attrs.frozen
class Plugins:
    """Every installed plugin: the usable ones by name, and the broken ones with their error."""

    all: tuple[Plugin, ...]

    @property
    def loaded(self) -> dict[str, type[Destination[Any]]]:
        return {p.name: p.destination for p in self.all if p.destination is not None}

    @property
    def broken(self) -> list[Plugin]:
        return [p for p in self.all if p.destination is None]

    def unavailable(self) -> dict[str, str]:
        """Each broken plugin's name and the sentence a store that uses it is refused with."""
        return {p.name: p.problem for p in self.broken}

    def notes(self) -> PluginNotes:
        """What the config loader says about each plugin beyond its config class."""
        origins = {p.name: p.origin for p in self.all if p.destination is not None}
        return PluginNotes(self.unavailable(), origins)

    def log_problems(self, refused: Sequence[RefusedStore]) -> None:
        """At start, once: each broken plugin, and each store left out because it uses one
        (or a type that is not installed). An operator must act on both: ERROR."""
        log = structlog.get_logger("tagless.plugins")
        for plugin in self.broken:
            log.error(
                "destination_plugin_broken",
                plugin=plugin.name,
                distribution=plugin.distribution,
                version=plugin.version,
                error=plugin.error,
            )
        for store in refused:
            for issue in store.issues:
                log.error(
                    "store_refused",
                    store=store.store.store,
                    file=issue.file,
                    line=issue.line,
                    problem=issue.message,
                )


def load_plugins() -> Plugins:
    """Load every entry point of the group; one failing never stops the others."""
    found: list[Plugin] = []
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        plugin = _load(point)
        if any(other.name == plugin.name and other.destination for other in found):
            plugin = attrs.evolve(
                plugin, destination=None, error=f"another package registers {plugin.name!r} too"
            )
        found.append(plugin)
    return Plugins(tuple(found))


def discover() -> dict[str, type[Destination[Any]]]:
    """Every usable destination type by name; built-ins load the same way as third parties."""
    return load_plugins().loaded


def _load(point: EntryPoint) -> Plugin:
    dist = point.dist
    plugin = Plugin(
        point.name,
        point.value,
        dist.name if dist is not None else "(unknown distribution)",
        dist.version if dist is not None else "?",
    )
    try:
        loaded = point.load()
    except Exception as error:  # a broken third-party package must name itself, not stop us
        return attrs.evolve(plugin, error=f"import failed: {type(error).__name__}: {error}")
    problem = _check(point.name, loaded)
    if problem:
        return attrs.evolve(plugin, error=problem)
    return attrs.evolve(plugin, destination=loaded)


def _check(name: str, loaded: object) -> str:
    """Why ``loaded`` is not a usable destination class named ``name``; empty when it is."""
    if not (isinstance(loaded, type) and issubclass(loaded, Destination)):
        return f"it is {_describe(loaded)}, not a subclass of router.sdk.Destination"
    declared = getattr(loaded, "name", None)
    if declared != name:
        return f"the class calls itself {declared!r} but is registered as {name!r}"
    if not _api_satisfied(getattr(loaded, "requires_api", "1")):
        return f"it requires plugin API {loaded.requires_api}; this Tagless has {API_VERSION}"
    return ""


def _describe(value: object) -> str:
    if isinstance(value, type):
        return f"the class {value.__qualname__}"
    return f"a {type(value).__name__}"


def _api_satisfied(required: str) -> bool:
    """``"1"`` is satisfied by every 1.y, ``"1.2"`` by 1.2 and later 1.y (never by 2.x)."""
    have_major, have_minor = (int(part) for part in API_VERSION.split("."))
    try:
        parts = [int(part) for part in str(required).split(".")]
    except ValueError:
        return False
    major, minor = parts[0], parts[1] if len(parts) > 1 else 0
    return major == have_major and minor <= have_minor


def config_classes(plugins: Mapping[str, type[Destination[Any]]]) -> dict[str, type]:
    """What the config loader needs: each type's attrs config class."""
    return {name: plugin.config_class for name, plugin in plugins.items()}
