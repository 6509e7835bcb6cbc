"""``tributary assets list|show``: the tenant's inventory through the enricher API.

``list`` takes the filters ``GET /v1/assets`` supports; ``show`` prints one asset's values,
which import set each one (provenance) and its dependencies both ways.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from .connection import (ApiKeyOption, Connection, DEFAULT_URLS, EnricherUrlOption, UserIdOption, connect,
                         stdout_console, valid_uuid)
from .errors import usage

assets = typer.Typer(help="The asset inventory: list with filters, show one asset.", no_args_is_help=True)
out = stdout_console()

# The asset's own columns shown by `show`, in this order; everything else is in attributes.
VALUE_FIELDS = ("name", "asset_type", "hostname", "fqdn", "ip_address", "mac_address", "environment",
                "criticality", "operating_system", "serial_number", "external_id", "source")


def _connect(api_key: str | None, enricher_url: str, user_id: str) -> Connection:
    return connect(api_key, enricher_url=enricher_url, user_id=user_id)


def assets_table(page: dict[str, Any]) -> Table:
    items = page["items"]
    shown = f"{len(items)} of {page['total']}" if page["total"] > len(items) else str(page["total"])
    table = Table(title=f"{shown} asset(s)", box=box.SIMPLE, title_justify="left")
    for col in ("asset", "name", "type", "environment", "criticality", "ip address", "flags"):
        table.add_column(col)
    for a in items:
        flags = [*(["placeholder"] if a.get("is_placeholder") else []), *a.get("compliance_flags", [])]
        table.add_row(str(a["asset_id"]), a["name"], a.get("asset_type") or "-", a.get("environment") or "-",
                      a.get("criticality") or "-", a.get("ip_address") or "-", ", ".join(flags))
    return table


def _value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, default=str)


def asset_tables(asset: dict[str, Any]) -> list[Table]:
    """Values with their provenance, then dependencies out of and into the asset."""
    provenance = asset.get("provenance") or {}
    values = Table(title=f"asset {asset['asset_id']}", box=box.SIMPLE, title_justify="left")
    for col in ("attribute", "value", "set by import", "source", "at"):
        values.add_column(col)
    fields = [(f, asset.get(f)) for f in VALUE_FIELDS]
    fields += [(f, v) for f, v in sorted((asset.get("attributes") or {}).items())]
    fields += [(f"performance.{k}", v) for k, v in sorted((asset.get("performance") or {}).items())]
    fields += [(f"classification.{k}", v) for k, v in sorted((asset.get("classification") or {}).items())]
    for name, value in fields:
        if value in (None, "", [], {}):
            continue
        p = provenance.get(name) or provenance.get(name.split(".", 1)[-1]) or {}
        values.add_row(name, _value(value), str(p.get("import_id") or "-"), str(p.get("source") or "-"),
                       str(p.get("set_at") or "-"))
    deps = asset.get("dependencies") or {}
    tables = [values]
    for direction, other, label in (("outgoing", "target_name", "depends on"), ("incoming", "source_name",
                                                                                 "depended on by")):
        edges = deps.get(direction) or []
        table = Table(title=f"{label} ({len(edges)})", box=box.SIMPLE, title_justify="left")
        for col in ("asset", "port", "protocol", "type", "criticality"):
            table.add_column(col)
        for d in edges:
            table.add_row(d[other], "-" if d.get("port") is None else str(d["port"]), d.get("protocol") or "-",
                          d.get("dependency_type") or "-", d.get("criticality") or "-")
        tables.append(table)
    return tables


@assets.command("list")
def list_(
    asset_type: Annotated[str | None, typer.Option(help="e.g. server, database, application")] = None,
    environment: Annotated[str | None, typer.Option(help="e.g. production")] = None,
    criticality: Annotated[str | None, typer.Option(help="e.g. high")] = None,
    classification: Annotated[str | None, typer.Option(help="one data classification label, e.g. PII")] = None,
    import_id: Annotated[str | None, typer.Option(help="assets this import made a claim about")] = None,
    placeholder: Annotated[bool | None, typer.Option(
        "--placeholder/--no-placeholder", show_default=False,
        help="only placeholders (made for a dependency's missing end) or only real assets")] = None,
    q: Annotated[str | None, typer.Option("--search", "-q", help="part of the name, hostname, FQDN or IP address")
                 ] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="print the API's answer as JSON")] = False,
    api_key: ApiKeyOption = None,
    enricher_url: EnricherUrlOption = DEFAULT_URLS["enricher"],
    user_id: UserIdOption = "cli",
) -> None:
    """The tenant's assets, filtered."""
    if import_id is not None:
        valid_uuid(import_id, "an import id")
    conn = _connect(api_key, enricher_url, user_id)
    body = conn.json("enricher", lambda: conn.client.list_assets(
        asset_type=asset_type, environment=environment, criticality=criticality, classification=classification,
        import_id=import_id, placeholder=None if placeholder is None else str(placeholder).lower(), q=q, page=page,
        page_size=page_size))
    if as_json:
        print(json.dumps(body))
        return
    out.print(assets_table(body))


@assets.command("show")
def show(
    asset_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="print the API's answer as JSON")] = False,
    api_key: ApiKeyOption = None,
    enricher_url: EnricherUrlOption = DEFAULT_URLS["enricher"],
    user_id: UserIdOption = "cli",
) -> None:
    """One asset: its values and which import set each, its dependencies both ways."""
    try:
        uuid.UUID(asset_id)
    except ValueError:
        raise usage(f"{asset_id!r} is not an asset id (a UUID).",
                    "`tributary assets list --search NAME` shows the ids") from None
    conn = _connect(api_key, enricher_url, user_id)
    asset = conn.json("enricher", lambda: conn.client.get_asset(asset_id),
                      not_found=f"Asset {asset_id} not found for {conn.tenant}.",
                      not_found_hint="`tributary assets list` shows the tenant's assets")
    if as_json:
        print(json.dumps(asset))
        return
    for table in asset_tables(asset):
        out.print(table)
