"""``python -m <service> serve|migrate``: one front door shape for every service."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from .migrations import upgrade
from .settings import ServiceSettings


def service_main(
    name: str,
    *,
    settings_factory: Callable[[], ServiceSettings],
    serve: Callable[[ServiceSettings], Awaitable[None]],
    migrations: Path,
    schema: str,
    argv: list[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m {name}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help=f"run the {name} service")
    sub.add_parser("migrate", help=f"apply the {name} database migrations (schema {schema})")
    args = parser.parse_args(argv)
    settings = settings_factory()
    if args.command == "migrate":
        upgrade(migrations, schema, settings)
    else:
        asyncio.run(serve(settings))
