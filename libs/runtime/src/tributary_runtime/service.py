"""Running a service process: its consumers and its HTTP app side by side until SIGTERM.

Shutdown (SIGTERM or SIGINT), within 10 s of the signal:
1. ``stop`` is set: /ready turns 503, the consumer fetches nothing more, the key ring stops.
2. The batch in hand commits within ``shutdown_grace_s`` (3 s) or is cancelled and rolled back
   (EventConsumer); uvicorn finishes open requests within the same few seconds, then cancels them.
3. The consumer leaves its group (bounded), the producer flushes and closes, the pool closes
   (each bounded, resources.CLOSE_TIMEOUT_S).
4. ``serve`` returns, so the process exits with code 0. Anything still running after the
   budget is cancelled rather than waited for.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import uvicorn
from fastapi import APIRouter, FastAPI

from contracts import Phase

from . import logs
from .collector import fewer_collections
from .consumer import DeadLetterHook, EventConsumer, Handler, Inbound, Unit
from .failures import fail_import_on_dead_letter
from .http import health_router
from .keyring import KeyRing
from .resources import Resources, open_resources
from .settings import ServiceSettings

log = logging.getLogger(__name__)

Task = Callable[[asyncio.Event], Awaitable[None]]


def configure_logging(settings: ServiceSettings, service: str) -> None:
    logs.configure_logging(service, level=settings.log_level, fmt=settings.log_format)


# Open HTTP requests get this long after the signal before uvicorn cancels them (an upload in
# progress is then abandoned: its receipt stays "receiving" and a retry with its idempotency
# key finishes it under the same ids).
HTTP_GRACE_S = 3.0
# After the grace period, the consumer's own bounded steps (abandoning the batch, leaving the
# group) need a few seconds more; whatever still runs then is cancelled.
STOP_BUDGET_EXTRA_S = 3.5


async def serve(settings: ServiceSettings, app: FastAPI | None, tasks: list[Task]) -> None:
    """Run the HTTP app and every background task; stop all on SIGTERM/SIGINT or a task failure."""
    stop = asyncio.Event()
    signalled = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        log.info("%s received: stopping (consumer, HTTP server, producer, pool)", sig.name)
        signalled.set()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)

    running: list[asyncio.Task[None]] = [asyncio.create_task(t(stop), name=getattr(t, "__qualname__", None))
                                         for t in tasks]
    server = None
    if app is not None:
        # log_config=None: uvicorn's lines go through our handler (JSON) instead of its own.
        config = uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_config=None,
                                log_level=settings.log_level.lower(), access_log=False, lifespan="on",
                                timeout_graceful_shutdown=HTTP_GRACE_S)
        server = uvicorn.Server(config)
        # The signals are ours (above): uvicorn's own handlers would stop only the HTTP server.
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        running.append(asyncio.create_task(server.serve()))

    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*running, stopper], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    if server is not None:
        server.should_exit = True
    failed = [t for t in done if t is not stopper and not t.cancelled() and t.exception() is not None]
    ended = [t for t in done if t is not stopper and t not in failed]
    for task in failed:
        log.critical("a background task died; stopping the process so it is restarted, not left idle",
                     exc_info=task.exception())
    budget = settings.shutdown_grace_s + STOP_BUDGET_EXTRA_S
    _, late = await asyncio.wait(running, timeout=budget)
    for task in late:
        log.warning("%s did not stop within %.1fs of the signal; cancelling it", task.get_name(), budget)
        task.cancel()
    if late:
        await asyncio.wait(late, timeout=0.5)
    stopper.cancel()
    for task in failed:
        raise task.exception()  # type: ignore[misc]
    if ended and not signalled.is_set():
        # A consumer loop that returns without being asked to has stopped consuming: as fatal as a crash.
        raise RuntimeError(f"background task ended on its own: {ended[0].get_name()}")


@dataclass(frozen=True)
class ConsumerSpec:
    group_id: str
    topics: tuple[str, ...]
    # The handler, or a function building it once the process's resources are open
    # (for handlers that need the pool beyond the unit's own transaction).
    handler: Handler | Callable[[Resources], Handler]
    event_types: tuple[str, ...]
    # The phase named in ImportFailed when one of this consumer's messages is dead-lettered.
    failure_phase: Phase
    needs_resources: bool = False
    # Run after the import is marked failed, in the same transaction (e.g. keep its staged set retryable).
    on_dead_letter: DeadLetterHook | None = None
    # Park an import's later events behind its dead-lettered one until a retry releases them
    # (tributary_runtime.sequencing; the service's migrations create the table).
    sequenced: bool = False
    # Rows counted in tributary_rows_processed_total: {published event type: (payload field, stage)},
    # e.g. {"ValidationCompleted": ("record_count", "validated")}; counted when its transaction commits.
    rows_from: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def build(self, res: Resources) -> Handler:
        return self.handler(res) if self.needs_resources else self.handler  # type: ignore[call-arg,return-value]

    def dead_letter_hook(self, producer_name: str) -> DeadLetterHook:
        fail = fail_import_on_dead_letter(self.failure_phase, producer_name)
        extra = self.on_dead_letter
        if extra is None:
            return fail

        async def both(unit: Unit, inbound: Inbound, reason: str) -> None:
            await fail(unit, inbound, reason)
            await extra(unit, inbound, reason)

        return both


# A readiness probe must answer quickly; a pool so busy that no connection frees up within
# this time is as good as unreachable for the API anyway.
DB_CHECK_TIMEOUT_S = 2.0


async def database_reachable(res: Resources) -> bool:
    try:
        async with asyncio.timeout(DB_CHECK_TIMEOUT_S):
            async with res.db.pool.acquire() as conn:
                return await conn.fetchval("SELECT 1") == 1
    except Exception:  # any failure (timeout, refused, no pool at all) means not ready
        return False


async def run_service(settings: ServiceSettings, *, name: str, schema: str, consumer: ConsumerSpec | None = None,
                      routers: tuple[APIRouter, ...] = (),
                      on_start: Callable[[Resources], Awaitable[None]] | None = None,
                      background: tuple[Callable[[Resources], Task], ...] = ()) -> None:
    """Open the service's resources, then run its consumer, HTTP app and ``background`` tasks
    (each built from the resources) until stopped."""
    configure_logging(settings, name)
    async with open_resources(settings, schema, name) as res:
        if on_start is not None:
            await on_start(res)
        app = FastAPI(title=f"Tributary {name}", version="1")
        app.state.resources = res
        app.state.settings = settings
        keyring = KeyRing(settings)
        app.state.keyring = keyring
        tasks: list[Task] = [keyring.run, *(build(res) for build in background)]
        event_consumer = None
        if consumer is not None:
            event_consumer = EventConsumer(
                settings=settings, db=res.db, producer=res.producer, group_id=consumer.group_id,
                topics=consumer.topics, handler=consumer.build(res), event_types=consumer.event_types,
                on_dead_letter=consumer.dead_letter_hook(name), client_id=name, sequenced=consumer.sequenced,
                rows_from=consumer.rows_from,
            )
            tasks.append(event_consumer.run)
        app.state.consumer = event_consumer

        async def ready() -> dict[str, bool]:
            checks = {"keyring": keyring.ready.is_set(), "database": await database_reachable(res)}
            if event_consumer is not None:
                checks["consumer"] = event_consumer.running
            return checks

        for router in routers:
            app.include_router(router)
        app.include_router(health_router(ready))
        # Frozen from here: what start-up made (modules, validators, pools) is never collected again.
        with fewer_collections():
            await serve(settings, app, tasks)
