"""``tributary-contracts export-schemas DIR``: JSON Schema of every event envelope.

(``tributary-contracts export-asyncapi [FILE]`` writes the AsyncAPI document: ``contracts.asyncapi``.)

One file per event and version, ``<EventType>.v<N>.json``: the current version of every
event, plus the earlier versions consumers still accept (``contracts.history``), so a
producer that still emits an older version keeps a schema to check against.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from . import asyncapi
from .codec import PREVIOUS_MODELS, REGISTRY, envelope_type
from .envelope import Envelope, Payload


def schemas() -> dict[str, dict[str, Any]]:
    versions: list[tuple[str, type[Payload], type[Envelope[Any]]]] = [
        (event_type, payload, envelope_type(event_type)) for event_type, payload in REGISTRY.items()]
    versions += [(event_type, payload, Envelope[payload])  # type: ignore[valid-type]
                 for (event_type, _), payload in PREVIOUS_MODELS.items()]
    out = {}
    for event_type, payload, envelope in sorted(versions, key=lambda v: (v[0], v[1].SCHEMA_VERSION)):
        schema = envelope.model_json_schema()
        schema["title"] = event_type
        schema["$id"] = f"urn:tributary:event:{event_type}:v{payload.SCHEMA_VERSION}"
        out[f"{event_type}.v{payload.SCHEMA_VERSION}.json"] = schema
    return out


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = directory / name
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tributary-contracts")
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export-schemas", help="write one JSON Schema per event")
    exp.add_argument("directory", type=Path, nargs="?", default=Path("contracts/schemas"))
    api = sub.add_parser("export-asyncapi", help="write the AsyncAPI 3.0 document of every topic")
    api.add_argument("file", type=Path, nargs="?", default=asyncapi.DEFAULT_PATH)
    args = parser.parse_args(argv)
    if args.command == "export-asyncapi":
        print(asyncapi.export(args.file))
        return
    for path in export(args.directory):
        print(path)


if __name__ == "__main__":
    main()
