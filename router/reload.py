"""Hot reload (SIGHUP, ``POST /api/reload``): read the config again and serve it whole, or
refuse it with its errors and keep the running one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import attrs
import structlog
from aiohttp import web

from router.config import Config, ConfigError, load_config
from router.health import lifecycle_reason
from router.plugins import PluginError, config_classes
from router.secret import MissingSecret

if TYPE_CHECKING:
    from router.app import Tagless

log = structlog.get_logger("tagless.reload")

#: Settings a running process cannot take (listeners, the outbox file, logging): a reload
#: that changes one is refused and names it. ``None``: the whole section.
RESTART_ONLY: Final[tuple[tuple[str, tuple[str, ...] | None], ...]] = (
    ("server", None),
    (
        "outbox",
        ("path", "url", "synchronous", "max_pending_events", "min_free_disk_mb", "lease_secs"),
    ),
    ("admin", ("host", "port")),
    ("logging", None),
)


@attrs.frozen
class ReloadResult:
    """The last reload: when, whether it was taken, why not, and what it changed."""

    at: float
    ok: bool
    errors: list[str]
    changes: list[str] = attrs.Factory(list)


def restart_needed(old: Config, new: Config) -> list[str]:
    """The restart-only settings ``new`` changes, as ``section.key: why``."""
    found = []
    for section, keys in RESTART_ONLY:
        before, after = getattr(old, section), getattr(new, section)
        names = keys or tuple(f.name for f in attrs.fields(type(before)))
        for name in names:
            if getattr(before, name) != getattr(after, name):
                found.append(f"{section}.{name}: changed, which takes a restart, not a reload")
    return found


def changed_stores(old: Config, new: Config) -> tuple[list[str], set[str]]:
    """What changed, store by store, in words; and the names of stores added, removed or
    changed (their delivery lanes restart; the other stores' go on untouched)."""
    before = {s.store: s for s in old.stores}
    after = {s.store: s for s in new.stores}
    words, names = [], set()
    for name in sorted(before.keys() | after.keys()):
        was, now = before.get(name), after.get(name)
        if was == now:
            continue
        names.add(name)
        if was is None:
            words.append(f"store {name}: added")
        elif now is None:
            words.append(f"store {name}: removed")
        else:
            words.append(f"store {name}: changed")
    if old.admin.token != new.admin.token:
        words.append("admin.token: changed")
    return words, names


async def reload(tagless: Tagless) -> ReloadResult:
    """Read the config directory again; if it is valid and needs no restart, serve it (new
    stores, keys and destinations at once, without dropping a request); else keep the
    running config. Sets and returns ``tagless.last_reload``."""
    async with tagless.reloading:
        at = tagless.clock.now()
        errors: list[str] = []
        if lifecycle_reason(tagless) is not None:
            result = ReloadResult(at, ok=False, errors=["Tagless is starting or stopping"])
            log.warning("config_reload_refused", errors=result.errors)
            return result  # not the overview's last reload: no config was read
        try:
            config = load_config(tagless.config.source_dir, config_classes(tagless.plugins))
            errors = restart_needed(tagless.config, config)
            if not errors:
                compiled = tagless.compile(config)
        except ConfigError as error:
            errors = [str(issue) for issue in error.errors]
        except (MissingSecret, PluginError) as error:
            errors = [str(error)]
        if errors:
            log.error("config_reload_refused", errors=errors)
            result = ReloadResult(at, ok=False, errors=errors)
        else:
            changes, names = changed_stores(tagless.config, config)
            await tagless.serve_config(config, *compiled, restart=names)
            log.info("config_reloaded", changes=changes)
            result = ReloadResult(at, ok=True, errors=[], changes=changes)
        tagless.last_reload = result
        return result


def reload_handler(tagless: Tagless) -> Any:
    """``POST /api/reload`` (behind the admin listener's auth): 200 with what changed, or
    422 with the errors that kept the running config."""

    async def handle(request: web.Request) -> web.Response:
        result = await reload(tagless)
        return web.json_response(attrs.asdict(result), status=200 if result.ok else 422)

    return handle
