"""Running a service process: its consumers and its HTTP app side by side until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from dataclasses import dataclass

import uvicorn
from fastapi import APIRouter, FastAPI

from contracts import Phase

from .consumer import DeadLetterHook, EventConsumer, Handler, Inbound, Unit
from .failures import fail_import_on_dead_letter
from .http import health_router
from .keyring import KeyRing
from .resources import Resources, open_resources
from .settings import ServiceSettings

log = logging.getLogger(__name__)

Task = Callable[[asyncio.Event], Awaitable[None]]


def configure_logging(settings: ServiceSettings, service: str) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


async def serve(settings: ServiceSettings, app: FastAPI | None, tasks: list[Task]) -> None:
    """Run the HTTP app and every background task; stop all on SIGTERM/SIGINT or a task failure."""
    stop = asyncio.Event()
    signalled = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: (signalled.set(), stop.set()))

    running: list[asyncio.Task[None]] = [asyncio.create_task(t(stop), name=getattr(t, "__qualname__", None))
                                         for t in tasks]
    server = None
    if app is not None:
        config = uvicorn.Config(app, host=settings.http_host, port=settings.http_port,
                                log_level=settings.log_level.lower(), access_log=False, lifespan="on")
        server = uvicorn.Server(config)
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
    await asyncio.gather(*running, return_exceptions=True)
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


async def run_service(settings: ServiceSettings, *, name: str, schema: str, consumer: ConsumerSpec | None = None,
                      routers: tuple[APIRouter, ...] = (),
                      on_start: Callable[[Resources], Awaitable[None]] | None = None) -> None:
    """Open the service's resources, then run its consumer and HTTP app until stopped."""
    configure_logging(settings, name)
    async with open_resources(settings, schema, name) as res:
        if on_start is not None:
            await on_start(res)
        app = FastAPI(title=f"Tributary {name}", version="1")
        app.state.resources = res
        app.state.settings = settings
        keyring = KeyRing(settings)
        app.state.keyring = keyring
        tasks: list[Task] = [keyring.run]
        event_consumer = None
        if consumer is not None:
            event_consumer = EventConsumer(
                settings=settings, db=res.db, producer=res.producer, group_id=consumer.group_id,
                topics=consumer.topics, handler=consumer.build(res), event_types=consumer.event_types,
                on_dead_letter=consumer.dead_letter_hook(name), client_id=name, sequenced=consumer.sequenced,
            )
            tasks.append(event_consumer.run)
        app.state.consumer = event_consumer

        async def ready() -> bool:
            return keyring.ready.is_set() and (event_consumer is None or event_consumer.running)

        for router in routers:
            app.include_router(router)
        app.include_router(health_router(ready))
        await serve(settings, app, tasks)
