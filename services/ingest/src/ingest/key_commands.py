"""``python -m ingest keys create|revoke|list``: the operator's way to hand out API keys.

``tributary keys …`` runs these. Output is JSON on stdout; the key is printed once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid

from contracts import Tenant
from tributary_runtime.broker import ensure_topics, make_producer
from tributary_runtime.db import Database

from . import SCHEMA, keys
from .settings import IngestSettings


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ingest keys")
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="create an API key for a tenant (printed once)")
    create.add_argument("--client-account-id", type=uuid.UUID, required=True)
    create.add_argument("--engagement-id", type=uuid.UUID, required=True)
    create.add_argument("--label")
    revoke = sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    listing = sub.add_parser("list", help="list keys (ids, tenants, labels; never the keys)")
    listing.add_argument("--client-account-id", type=uuid.UUID)
    listing.add_argument("--engagement-id", type=uuid.UUID)
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, settings: IngestSettings) -> int:
    await ensure_topics(settings)
    db = await Database.connect(settings.asyncpg_dsn, SCHEMA, max_size=1)
    producer = make_producer(settings, "ingest-keys")
    await producer.start()
    try:
        async with db.transaction() as conn:
            if args.action == "create":
                tenant = Tenant(client_account_id=args.client_account_id, engagement_id=args.engagement_id)
                record, key = await keys.create_key(conn, producer, tenant, args.label)
                print(json.dumps(record.model_dump(mode="json", exclude={"key_hash"}) | {"api_key": key}))
            elif args.action == "revoke":
                record = await keys.revoke_key(conn, producer, args.key_id)
                if record is None:
                    print(f"no key with id {args.key_id!r}", file=sys.stderr)
                    return 1
                print(json.dumps(record.model_dump(mode="json", exclude={"key_hash"})))
            else:
                tenant = (Tenant(client_account_id=args.client_account_id, engagement_id=args.engagement_id)
                          if args.client_account_id and args.engagement_id else None)
                for record in await keys.list_keys(conn, tenant):
                    print(json.dumps(record.model_dump(mode="json", exclude={"key_hash"})))
    finally:
        await producer.stop()
        await db.close()
    return 0


def main(argv: list[str]) -> int:
    return asyncio.run(run(parse(argv), IngestSettings()))
