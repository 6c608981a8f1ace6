"""Discovers destination plugins through the ``tagless.destinations`` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from router.destination import Destination

GROUP = "tagless.destinations"


class PluginError(Exception):
    """An installed plugin that cannot be used; names the entry point and why."""


def discover() -> dict[str, type[Destination[Any]]]:
    """Every installed destination type by name; built-ins load the same way as third parties."""
    found: dict[str, type[Destination[Any]]] = {}
    for point in entry_points(group=GROUP):
        try:
            plugin = point.load()
        except Exception as error:  # a broken third-party package must name itself
            raise PluginError(
                f"destination plugin {point.name!r} failed to load: {error}"
            ) from error
        if not (isinstance(plugin, type) and issubclass(plugin, Destination)):
            raise PluginError(
                f"destination plugin {point.name!r} ({point.value}) is not a Destination subclass"
            )
        if plugin.name != point.name:
            raise PluginError(
                f"destination plugin {point.value} calls itself {plugin.name!r} but is"
                f" registered as {point.name!r}"
            )
        found[point.name] = plugin
    return found


def config_classes(plugins: dict[str, type[Destination[Any]]]) -> dict[str, type]:
    """What the config loader needs: each type's attrs config class."""
    return {name: plugin.config_class for name, plugin in plugins.items()}
