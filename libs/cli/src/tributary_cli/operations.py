"""Operations behind ``tributary replay`` and ``tributary checksums`` (rebuilds run in the services'
own modules: ``python -m flow_state.rebuild``, ``python -m enricher.rebuild``)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg

from tributary_runtime import replay as replaying
from tributary_runtime.checksums import SESSION_SETTINGS, TableDigest, schema_digests
from tributary_runtime.settings import ServiceSettings

from .processes import SERVICES

# Each service's schema is named like its package.
SERVICE_SCHEMAS = tuple(module for module, _ in SERVICES.values())


def settings_from(env: dict[str, str]) -> ServiceSettings:
    return ServiceSettings(DATABASE_URL=env["DATABASE_URL"], KAFKA_BOOTSTRAP_SERVERS=env["KAFKA_BOOTSTRAP_SERVERS"])


async def digests(settings: ServiceSettings, schemas: tuple[str, ...] = SERVICE_SCHEMAS
                  ) -> dict[str, dict[str, TableDigest]]:
    """Checksums of every table of every service schema (consumer offsets aside: consuming moves them)."""
    conn = await asyncpg.connect(settings.asyncpg_dsn, server_settings=SESSION_SETTINGS)
    try:
        return {schema: await schema_digests(conn, schema) for schema in schemas}
    finally:
        await conn.close()


def differences(before: dict[str, dict[str, TableDigest]], after: dict[str, dict[str, TableDigest]]) -> list[str]:
    out = []
    for schema in sorted(before.keys() | after.keys()):
        a, b = before.get(schema, {}), after.get(schema, {})
        for table in sorted(a.keys() | b.keys()):
            x, y = a.get(table), b.get(table)
            if x is None or y is None or (x.rows, x.digest) != (y.rows, y.digest):
                out.append(f"{schema}.{table}: {x.rows if x else '-'} rows {x.digest[:12] if x else ''} → "
                           f"{y.rows if y else '-'} rows {y.digest[:12] if y else ''}")
    return out


async def replay(settings: ServiceSettings, import_id: uuid.UUID, *, dry_run: bool = False, wait: bool = True,
                 verify: bool = False, timeout: float = 60.0) -> dict[str, Any]:
    before = await digests(settings) if verify else None
    found = await replaying.find(settings, import_id)
    report: dict[str, Any] = {
        "import_id": str(import_id), "messages": len(found),
        "by_topic": {t: sum(1 for f in found if f.topic == t) for t in replaying.INPUT_TOPICS},
        "event_types": sorted({f.event_type or "?" for f in found})}
    if dry_run or not found:
        return report
    ends = await replaying.republish(settings, found)
    report["republished"] = len(found)
    report["partitions"] = {f"{tp.topic}[{tp.partition}]": end for tp, end in sorted(ends.items())}
    if wait or verify:
        report["consumers"] = await replaying.wait_consumed(settings, ends, SERVICE_SCHEMAS, timeout=timeout)
    if before is not None:
        after = await digests(settings)
        report["tables"] = sum(len(t) for t in after.values())
        report["changed"] = differences(before, after)
    return report


def run(coro: Any) -> Any:
    return asyncio.run(coro)
