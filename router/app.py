"""Wires a config into a running Tagless: outbox, destinations, dispatchers, listeners, shutdown."""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
from collections.abc import Collection, Sequence
from typing import Any, Literal

import structlog
from aiohttp import web

from router.admin import admin_app
from router.attempts import AttemptSink, attempt_sinks, observer_for
from router.clock import Clock, SystemClock
from router.config import (
    Config,
    ConfigError,
    ConfigIssue,
    RefusedStore,
    RetryConfig,
    UnresolvedSettings,
)
from router.decoded import DecodedEvents
from router.delivery_pool import DeliveryPool, LaneKey
from router.destination import Destination
from router.dispatch import LaneDispatcher
from router.health import readyz
from router.http import HttpClient
from router.ingest.auth import KeyRing
from router.ingest.http import Ingest
from router.ingest_channel import Channel
from router.ingest_pool import IngestPool
from router.metrics import Metrics
from router.ops.retention import enforce_retention
from router.outbox.base import OutboxError
from router.outbox.policy import RetryPolicy
from router.outbox.select import make_outbox, open_failure
from router.outbox.sqlite import SqliteOutbox
from router.process_pool import lower_priority
from router.reload import ReloadResult, reload
from router.secret import MissingSecret
from router.server import ConnectionLimits, GuardedRunner, admin_limits, ingest_limits
from router.startup import listen_failure, outbox_failure
from router.stores import StoreRuntime, build_store, write_keys

log = structlog.get_logger("tagless")


def compile_stores(
    config: Config,
    plugins: dict[str, type[Destination[Any]]],
    http: HttpClient,
) -> tuple[dict[str, StoreRuntime], dict[tuple[str, str], Destination[Any]]]:
    """Build every store's runtime and destination instance; config mistakes raise ConfigError."""
    stores: dict[str, StoreRuntime] = {}
    instances: dict[tuple[str, str], Destination[Any]] = {}
    issues: list[ConfigIssue] = []
    for store in config.stores:
        mine: dict[str, Destination[Any]] = {}
        for dest in store.destinations:
            if dest.enabled:
                if isinstance(dest.settings, UnresolvedSettings):
                    raise MissingSecret(dest.settings.variables[0])
                mine[dest.id] = plugins[dest.type](dest.settings, http)
        try:
            stores[store.store] = build_store(store, mine)
        except ValueError as error:
            issues.append(ConfigIssue(store.file, None, "client_ip", str(error)))
            continue
        instances.update({(store.store, dest_id): d for dest_id, d in mine.items()})
    if issues:
        raise ConfigError(issues)
    return stores, instances


def retry_policy(config: RetryConfig) -> RetryPolicy:
    """The outbox's retry policy from a destination's merged ``retry`` settings."""
    return RetryPolicy(
        max_attempts=config.max_attempts,
        max_age_secs=config.max_age_secs,
        initial_backoff_secs=config.initial_backoff_secs,
        max_backoff_secs=config.max_backoff_secs,
        max_pause_secs=config.max_pause_secs,
    )


#: What a Tagless process does: everything (the default), or with ``server.ingest_processes``
#: the main process delivers (and serves the admin listener) and each ingest process ingests;
#: with ``server.delivery_processes`` each delivery process runs its ``lanes`` and the main
#: process (``whole`` or ``delivery``) none.
Role = Literal["whole", "delivery", "ingest", "lanes"]

#: How often a child process sends its counters to the main process.
COUNTS_EVERY_SECS = 1.0
#: Where another process settles what this one commits: how often the backlog may be counted
#: again while its figure is past half the cap (each count reads the undelivered events).
RECOUNT_NEAR_CAP_SECS = 2.0
#: How often the main process indexes new events for identity stitching's look-up (a look-up
#: indexes what is left first: this keeps that short).
INDEX_PERSONS_EVERY_SECS = 1.0


class Tagless:
    """One Tagless process: start it, let it serve, stop it gracefully."""

    def __init__(
        self,
        config: Config,
        plugins: dict[str, type[Destination[Any]]],
        *,
        clock: Clock | None = None,
        refused: Sequence[RefusedStore] = (),
        json_logs: bool = False,
        channel: socket.socket | None = None,
        lanes: Collection[LaneKey] | None = None,
    ) -> None:
        self.config = config
        self.role: Role = (
            "lanes"
            if lanes is not None
            else "ingest"
            if channel is not None
            else "delivery"
            if config.server.ingest_processes
            else "whole"
        )
        #: A delivery process's lanes: (store, destination) pairs it runs, of those configured.
        self.assigned = frozenset(lanes or ())
        #: A child process's socket to the main process (router/ingest_channel.py).
        self._channel_socket = channel
        self.channel: Channel | None = None
        #: The main process's ingest processes, with ``server.ingest_processes``.
        self.pool: IngestPool | None = None
        #: The main process's delivery processes, with ``server.delivery_processes``.
        self.delivery_pool: DeliveryPool | None = None
        self.json_logs = json_logs
        self._stop_signal = asyncio.Event()
        self.plugins = plugins
        #: Stores left out for a plugin that cannot be loaded: their senders get a 503.
        self.refused = refused
        self.clock = clock or SystemClock()
        server = config.server
        self.outbox = make_outbox(
            config.outbox,
            self.clock,
            shared=server.ingest_processes > 0 or server.delivery_processes > 0,
        )
        self.metrics = Metrics()
        self.dispatchers: list[LaneDispatcher] = []
        #: Audit sinks (``bigquery`` with ``audit_table``): they outlive the dispatchers.
        self.sinks: list[AttemptSink] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._runners: list[web.AppRunner] = []
        self.ingest: Ingest | None = None
        #: The compiled stores and destination instances serving now (a reload swaps them).
        self.stores: dict[str, StoreRuntime] = {}
        self.destinations: dict[tuple[str, str], Destination[Any]] = {}
        self.http: HttpClient | None = None
        self.ports: dict[str, int] = {}
        #: The last reload of the config (SIGHUP, POST /api/reload), for the overview.
        self.last_reload: ReloadResult | None = None
        self.reloading = asyncio.Lock()
        self._lanes: dict[tuple[str, str], tuple[LaneDispatcher, asyncio.Task[None]]] = {}
        self._sinks: dict[tuple[str, str], AttemptSink] = {}
        self._stop_maintenance = asyncio.Event()

    async def start(self) -> None:
        """Open the outbox, open the listeners, then start one dispatcher per destination.

        If any step fails, whatever was started is stopped again before the error is raised
        (a listener that cannot bind must not leave the outbox's threads running);
        :class:`StartupError` says what failed and what to do.
        """
        try:
            await self._start()
        except BaseException:
            await self._shutdown()
            raise

    async def _start(self) -> None:
        limits = ingest_limits(self.config.server)
        if self.role == "delivery":
            self.pool = IngestPool(
                config_dir=self.config.source_dir,
                server=self.config.server,
                count=self.config.server.ingest_processes,
                metrics=self.metrics,
                on_commit=self.outbox.committed,
                json_logs=self.json_logs,
            )
        if self.role in ("whole", "delivery") and self.config.server.delivery_processes:
            self.delivery_pool = DeliveryPool(
                config_dir=self.config.source_dir,
                count=self.config.server.delivery_processes,
                metrics=self.metrics,
                lanes=self.enabled_lanes(self.config),
                json_logs=self.json_logs,
            )
            self.outbox.wake_observer = self.delivery_pool.wake
        try:
            await self.outbox.open()
        except (OSError, sqlite3.Error, OutboxError) as error:
            if self.config.outbox.url is not None:
                raise open_failure(self.config.outbox, error) from error
            raise outbox_failure(self.config.outbox.path, error) from error
        if self.pool is not None or self.role == "lanes":
            # After the threads that must keep Tagless's priority exist: the pools' spawners
            # (child processes inherit from them) and the outbox's writer, whose commits hold
            # the writers' lock that ingest processes wait for (niced, a preempted commit
            # would keep them waiting: priority inversion, measured as ingest p99 42 ms at
            # half of saturation against 7 ms for the bare server).
            server = self.config.server
            delivers = self.role == "lanes" or self.delivery_pool is None
            idle = server.delivery_idle and delivers
            lower_priority(server.delivery_nice, idle=idle)
            if (server.delivery_nice or idle) and isinstance(self.outbox, SqliteOutbox):
                self.outbox.writer.hold_loop_still = True
        self.http = HttpClient.create()
        stores, instances = self.compile(self.config)
        self.stores, self.destinations = stores, instances
        if self.role == "lanes":
            self._serve_as_delivery_process(instances)
            return
        if self.role != "delivery":
            await self._start_ingest(stores, limits)
        if self.role == "ingest":
            await self._serve_as_ingest_process()
            return
        admin = self.config.admin
        self.ports["admin"] = await self._listen(
            admin_app(self), "admin", admin.host, admin.port, admin_limits(limits)
        )
        if self.pool is not None:  # after the admin listener: a port conflict there stops first
            self.ports["ingest"] = await self.pool.start()
        # deliveries start only once both listeners are up: a failed start delivers nothing
        if self.delivery_pool is not None:
            await self.delivery_pool.start_all()
        self.start_lanes(instances)
        self._tasks.append(asyncio.create_task(self._maintain(), name="outbox-maintenance"))
        self._tasks.append(asyncio.create_task(self._index_persons(), name="stitching-index"))
        if self.delivery_pool is not None and self.ingest is not None:
            self._tasks.append(asyncio.create_task(self._recount_near_cap(), name="recount"))
        log.info("tagless_started", stores=len(stores), destinations=len(instances), **self.ports)

    async def _start_ingest(
        self, stores: dict[str, StoreRuntime], limits: ConnectionLimits
    ) -> None:
        self.ingest = Ingest(
            outbox=self.outbox,
            stores=stores,
            keys=KeyRing(write_keys([*self.config.stores, *(r.store for r in self.refused)])),
            limits=self.config.server,
            metrics=self.metrics,
            refused=frozenset(r.store.store for r in self.refused),
        )
        ingest_app = web.Application(
            client_max_size=self.config.server.max_request_bytes,
            # ingest decodes Content-Encoding itself, into JSON errors (router/ingest/body.py)
            handler_args={"auto_decompress": False},
        )
        ingest_app.add_routes(self.ingest.routes())
        ingest_app.router.add_get("/healthz", self._healthz)
        ingest_app.router.add_get("/readyz", self._readyz)
        server = self.config.server
        self.ports["ingest"] = await self._listen(
            ingest_app,
            "server",
            server.host,
            server.port,
            limits,
            reuse_port=self.role == "ingest",
        )

    async def _serve_as_ingest_process(self) -> None:
        """Tell the main process of each commit and, every second, of the counters; count
        the backlog (for backpressure) as the main process does; say ready."""
        self.channel = self._open_channel()
        self.outbox.commit_observer = self.channel.committed
        self._tasks.append(asyncio.create_task(self._maintain(), name="backlog-count"))
        self._tasks.append(asyncio.create_task(self._recount_near_cap(), name="recount"))
        self._tasks.append(asyncio.create_task(self._send_counts(), name="ingest-counts"))
        self.channel.send({"ready": self.ports["ingest"]})
        log.info("tagless_ingest_started", stores=len(self.stores), **self.ports)

    def _serve_as_delivery_process(
        self, instances: dict[tuple[str, str], Destination[Any]]
    ) -> None:
        """Run the lanes given, woken by the commits the main process passes on; tell it of
        the counters every second; say ready."""
        self.channel = self._open_channel()
        self.start_lanes(instances)
        self._tasks.append(asyncio.create_task(self._send_counts(), name="delivery-counts"))
        self.channel.send({"ready": sorted(self.assigned)})
        log.info("tagless_delivery_started", lanes=len(self._lanes))

    def _open_channel(self) -> Channel:
        assert self._channel_socket is not None

        def main_process_gone() -> None:
            log.warning("main_process_gone")
            self._stop_signal.set()

        return Channel(self._channel_socket, main_process_gone, self._heard_from_main)

    def _heard_from_main(self, message: dict[str, Any]) -> None:
        if "wake" in message:  # a delivery process: events of the store came in
            self.outbox.wake(str(message["wake"]))

    async def _send_counts(self) -> None:
        assert self.channel is not None
        sent: dict[str, Any] = {}
        while not self._stop_maintenance.is_set():
            counts = self.metrics.counts()
            if counts != sent:
                self.channel.send({"counts": counts})
                sent = counts
            await self.clock.wait(self._stop_maintenance, COUNTS_EVERY_SECS)

    def compile(
        self, config: Config
    ) -> tuple[dict[str, StoreRuntime], dict[tuple[str, str], Destination[Any]]]:
        """Every store's runtime and destination instance for ``config`` (ConfigError)."""
        assert self.http is not None
        return compile_stores(config, self.plugins, self.http)

    @staticmethod
    def enabled_lanes(config: Config) -> list[LaneKey]:
        """Every (store, destination) that delivers under ``config``."""
        return [(s.store, d.id) for s in config.stores for d in s.destinations if d.enabled]

    def start_lanes(self, instances: dict[tuple[str, str], Destination[Any]]) -> None:
        """Start a dispatcher per destination instance, and the audit sinks among them (an
        ingest process delivers nothing, nor does the main process with delivery processes;
        a delivery process runs its lanes only)."""
        if self.role == "ingest" or self.delivery_pool is not None:
            return
        # a store's audit sinks run beside its lanes, wherever they run: each takes the
        # attempts of this process's lanes
        lanes = instances
        if self.role == "lanes":
            lanes = {k: v for k, v in instances.items() if k in self.assigned}
        stores = {store for store, _ in lanes}
        configs = {(s.store, d.id): d for s in self.config.stores for d in s.destinations}
        sinks = attempt_sinks({k: v for k, v in instances.items() if k[0] in stores}, self.clock)
        self._sinks.update(sinks)
        self.sinks = list(self._sinks.values())
        for sink in sinks.values():
            sink.start()
        decoded = DecodedEvents()  # a store's lanes all start here: they share its decoding
        for (store, dest_id), destination in lanes.items():
            settings = configs[(store, dest_id)].retry
            lane = LaneDispatcher(
                self.outbox,
                store,
                dest_id,
                destination,
                retry_policy(settings),
                self.clock,
                concurrency=settings.concurrency,
                metrics=self.metrics,
                attempts=observer_for(sinks, (store, dest_id)),
                decoded=decoded,
            )
            self.dispatchers.append(lane)
            self.metrics.destinations[(store, dest_id)] = destination
            task = asyncio.create_task(lane.run(), name=f"dispatch:{store}:{dest_id}")
            self._tasks.append(task)
            self._lanes[(store, dest_id)] = (lane, task)

    async def stop_lanes(self, stores: set[str]) -> None:
        """Stop the dispatchers and audit sinks of ``stores``: in-flight batches finish (or go
        back within the grace period), then each lane resumes from its durable cursor."""
        grace = self.config.server.shutdown_grace_secs
        keys = [key for key in self._lanes if key[0] in stores]
        stopping = [self._lanes.pop(key) for key in keys]
        for lane, _ in stopping:
            lane.stop()
        await asyncio.gather(*(task for _, task in stopping), return_exceptions=True)
        await asyncio.gather(*(lane.drain(grace) for lane, _ in stopping))
        sinks = [self._sinks.pop(key) for key in list(self._sinks) if key[0] in stores]
        await asyncio.gather(*(sink.close(grace) for sink in sinks))
        self.sinks = list(self._sinks.values())
        for lane, task in stopping:
            self.dispatchers.remove(lane)
            self._tasks.remove(task)
        for key in keys:
            self.metrics.destinations.pop(key, None)
            self.outbox.forget_lane(*key)

    async def serve_config(
        self,
        config: Config,
        stores: dict[str, StoreRuntime],
        instances: dict[tuple[str, str], Destination[Any]],
        *,
        restart: set[str],
    ) -> None:
        """Serve ``config`` from now on (a reload): ingest takes its stores and keys at once;
        the lanes of the ``restart`` stores restart, the others go on untouched."""
        for name in self.stores.keys() - restart:  # unchanged: keep what is running
            stores[name] = self.stores[name]
            instances.update({k: v for k, v in self.destinations.items() if k[0] == name})
        self.config = config
        self.stores, self.destinations = stores, instances
        if self.ingest is not None:  # both in one step: no request sees one without the other
            self.ingest.stores, self.ingest.keys = stores, KeyRing(write_keys(config.stores))
        await self.stop_lanes(restart)
        self.start_lanes({k: v for k, v in instances.items() if k[0] in restart})
        if self.pool is not None:  # they read the same files again
            self.pool.reload()
        if self.delivery_pool is not None and restart:
            grace = config.server.shutdown_grace_secs
            await self.delivery_pool.restart(self.enabled_lanes(config), grace)

    async def _count_backlog(self) -> None:
        """Count every store's undelivered events afresh, as the figure backpressure reads."""
        # read afresh each time: a reload may have changed stores and settings
        lanes = [(s.store, [d.id for d in s.destinations if d.enabled]) for s in self.config.stores]
        try:
            for store, ids in lanes:
                await self.outbox.refresh_backlog(store, ids)
        except OutboxError as error:
            log.warning("outbox_maintenance_failed", error=str(error))

    async def _recount_near_cap(self) -> None:
        """Count the backlog again once its figure passes half the cap, where another process
        settles what this one commits (an ingest process; the main process with delivery
        processes): between counts the figure only grows by this process's commits, so ingest
        would refuse at the cap until the next round (``wal_checkpoint_secs``) however fast
        delivery keeps up."""
        near, stop = self.outbox.room.near_cap, self._stop_maintenance
        while not stop.is_set():
            await self.clock.wait(near, COUNTS_EVERY_SECS)
            if near.is_set() and not stop.is_set():
                near.clear()
                await self._count_backlog()
                await self.clock.wait(stop, RECOUNT_NEAR_CAP_SECS)

    async def _index_persons(self) -> None:
        """Keep stitching's look-up index of the SQLite outbox close behind the commits, off
        the ack path (router/outbox/persons.py), while some store stitches."""
        index = getattr(self.outbox, "index_persons", None)
        stop = self._stop_maintenance
        while index is not None and not stop.is_set():
            await self.clock.wait(stop, INDEX_PERSONS_EVERY_SECS)
            if stop.is_set() or not any(s.stitching.enabled for s in self.config.stores):
                continue
            try:
                await index()
            except OutboxError as error:
                log.warning("outbox_maintenance_failed", error=str(error))

    async def _maintain(self) -> None:
        """Keep the outbox bounded: count undelivered events afresh (at start, then every
        round), enforce retention (router/ops/retention.py), truncate the WAL."""
        wake = self._stop_maintenance
        while not wake.is_set():
            await self._count_backlog()
            await self.clock.wait(wake, self.config.outbox.wal_checkpoint_secs)
            if wake.is_set() or self.role == "ingest":  # the main process maintains the file
                continue
            try:
                await enforce_retention(self.outbox, self.config, self.clock.now())
                await self.outbox.checkpoint()
            except OutboxError as error:
                log.warning("outbox_maintenance_failed", error=str(error))

    async def _listen(
        self,
        app: web.Application,
        section: str,
        host: str,
        port: int,
        limits: ConnectionLimits,
        *,
        reuse_port: bool = False,
    ) -> int:
        grace = self.config.server.shutdown_grace_secs  # what in-flight requests get on stop
        runner = GuardedRunner(app, limits, section, access_log=None, shutdown_timeout=grace)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, host, port, backlog=1024, reuse_port=reuse_port or None)
        try:
            await site.start()
        except OSError as error:
            raise listen_failure(section, host, port, error) from error
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        return await readyz(self)

    async def stop(self) -> None:
        """Refuse new events, let in-flight requests and deliveries finish, close the outbox."""
        await self._shutdown()
        log.info("tagless_stopped")

    async def _shutdown(self) -> None:
        """Stop whatever has been started, in order; safe on a half-finished start."""
        grace = self.config.server.shutdown_grace_secs
        if self.ingest is not None:
            self.ingest.accepting = False
        runners, self._runners = self._runners, []
        self._stop_maintenance.set()
        for lane in self.dispatchers:
            lane.stop()
        # In-flight requests and in-flight deliveries share the one grace period, side by side:
        # each listener stops listening and waits for its requests, each lane for its batches,
        # each ingest process for its requests and commits.
        await asyncio.gather(
            *(runner.cleanup() for runner in runners),
            self._stop_delivery(grace),
            *(pool.stop(grace) for pool in (self.pool, self.delivery_pool) if pool is not None),
        )
        if self.http is not None:
            await self.http.close()
        await self.outbox.close()
        if self.channel is not None:  # the last counts, once every request is answered
            self.channel.send({"counts": self.metrics.counts()})
            self.channel.close()

    async def _stop_delivery(self, grace: float) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)  # loops return promptly
        await asyncio.gather(*(lane.drain(grace) for lane in self.dispatchers))
        await asyncio.gather(*(sink.close(grace) for sink in self.sinks))  # after the last try

    async def serve_until_signalled(self) -> None:
        """Start, serve until SIGTERM or SIGINT, then stop gracefully."""
        stop = self._stop_signal
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        reloads: set[asyncio.Task[Any]] = set()

        def reload_now() -> None:  # SIGHUP: read the config again (see router/reload.py)
            task = asyncio.create_task(reload(self), name="config-reload")
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        if self.role == "lanes":  # the main process reloads, and starts this one afresh
            loop.add_signal_handler(signal.SIGHUP, lambda: log.info("reload_left_to_main"))
        else:
            loop.add_signal_handler(signal.SIGHUP, reload_now)
        await self.start()
        await stop.wait()
        log.info("tagless_stopping")
        await self.stop()
