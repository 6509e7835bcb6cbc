"""``tributary-contracts export-schemas DIR``: JSON Schema of every event envelope."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .codec import REGISTRY, envelope_type


def schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for event_type, payload in sorted(REGISTRY.items()):
        schema = envelope_type(event_type).model_json_schema()
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
    args = parser.parse_args(argv)
    for path in export(args.directory):
        print(path)


if __name__ == "__main__":
    main()
