"""Where the services are and whose data this is: the one way every HTTP command is configured.

Each setting is an option with an environment variable behind it, the same name in every command:

- ``--api-key`` / ``TRIBUTARY_API_KEY``: the key names the tenant (``tributary keys create`` makes one);
- ``--ingest-url`` / ``TRIBUTARY_INGEST_URL`` (default http://127.0.0.1:8001), ``--validator-url`` /
  ``TRIBUTARY_VALIDATOR_URL`` (:8002), ``--enricher-url`` / ``TRIBUTARY_ENRICHER_URL`` (:8003),
  ``--flow-url`` / ``TRIBUTARY_FLOW_URL`` (:8004);
- ``TRIBUTARY_USER_ID``: recorded as the operation's user;
- without a key, on a development stack that accepts tenant headers only:
  ``TRIBUTARY_CLIENT_ACCOUNT_ID`` and ``TRIBUTARY_ENGAGEMENT_ID`` (default: the demo tenant).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from contracts import Tenant

from .client import TributaryClient
from .errors import check, unreachable, usage

DEMO_CLIENT_ACCOUNT_ID = "00000000-0000-4000-8000-000000000001"
DEMO_ENGAGEMENT_ID = "00000000-0000-4000-8000-000000000002"
DEFAULT_URLS = {"ingest": "http://127.0.0.1:8001", "validator": "http://127.0.0.1:8002",
                "enricher": "http://127.0.0.1:8003", "flow-state": "http://127.0.0.1:8004"}

ApiKeyOption = Annotated[str | None, typer.Option(
    "--api-key", envvar="TRIBUTARY_API_KEY", show_default=False, help="API key (names the tenant)")]
IngestUrlOption = Annotated[str, typer.Option("--ingest-url", envvar="TRIBUTARY_INGEST_URL", help="ingest API")]
ValidatorUrlOption = Annotated[str, typer.Option("--validator-url", envvar="TRIBUTARY_VALIDATOR_URL",
                                                 help="validator API")]
EnricherUrlOption = Annotated[str, typer.Option("--enricher-url", envvar="TRIBUTARY_ENRICHER_URL",
                                                help="enricher API")]
FlowUrlOption = Annotated[str, typer.Option("--flow-url", envvar="TRIBUTARY_FLOW_URL", help="flow-state API")]
ClientAccountOption = Annotated[str, typer.Option(
    envvar="TRIBUTARY_CLIENT_ACCOUNT_ID", help="tenant without a key (development stacks only): client account")]
EngagementOption = Annotated[str, typer.Option(
    envvar="TRIBUTARY_ENGAGEMENT_ID", help="tenant without a key (development stacks only): engagement")]
UserIdOption = Annotated[str, typer.Option(envvar="TRIBUTARY_USER_ID", help="recorded as the operation's user")]


@dataclass(frozen=True)
class Connection:
    client: TributaryClient

    @property
    def tenant(self) -> str:
        if self.client.api_key:
            return "this API key's tenant"
        t = self.client.tenant
        return f"tenant {t.client_account_id}/{t.engagement_id}"

    def url(self, service: str) -> str:
        c = self.client
        return {"ingest": c.ingest_url, "validator": c.validator_url or "", "enricher": c.enricher_url or "",
                "flow-state": c.flow_url}[service]

    def call(self, service: str, request: Callable[[], httpx.Response]) -> httpx.Response:
        """Send a request; an unreachable service becomes one sentence naming it and its URL setting."""
        try:
            return request()
        except httpx.TransportError as exc:
            raise unreachable(service, self.url(service), exc) from None

    def json(self, service: str, request: Callable[[], httpx.Response], **not_found: Any) -> Any:
        """The answer's JSON; a refusal (401, 404, 409, 422, …) becomes a :class:`~.errors.CliError`."""
        return check(self.call(service, request), service, **not_found)


def connect(api_key: str | None, *, ingest_url: str = DEFAULT_URLS["ingest"],
            validator_url: str = DEFAULT_URLS["validator"], enricher_url: str = DEFAULT_URLS["enricher"],
            flow_url: str = DEFAULT_URLS["flow-state"], client_account_id: str | None = None,
            engagement_id: str | None = None, user_id: str = "cli") -> Connection:
    # Commands without tenant options still honour the development-only tenant variables.
    client_account_id = client_account_id or os.environ.get("TRIBUTARY_CLIENT_ACCOUNT_ID") or DEMO_CLIENT_ACCOUNT_ID
    engagement_id = engagement_id or os.environ.get("TRIBUTARY_ENGAGEMENT_ID") or DEMO_ENGAGEMENT_ID
    try:
        tenant = Tenant(client_account_id=uuid.UUID(client_account_id), engagement_id=uuid.UUID(engagement_id))
    except ValueError:
        if not api_key:
            raise usage("The client account id and engagement id must be UUIDs.",
                        "set TRIBUTARY_API_KEY (or --api-key) instead; the key names the tenant") from None
        # The key names the tenant; these are not sent.
        tenant = Tenant(client_account_id=uuid.UUID(DEMO_CLIENT_ACCOUNT_ID),
                        engagement_id=uuid.UUID(DEMO_ENGAGEMENT_ID))
    return Connection(TributaryClient(
        ingest_url=ingest_url.rstrip("/"), flow_url=flow_url.rstrip("/"), tenant=tenant, user_id=user_id,
        validator_url=validator_url.rstrip("/"), enricher_url=enricher_url.rstrip("/"), api_key=api_key or None))


def valid_uuid(value: str, what: str) -> str:
    try:
        uuid.UUID(value)
    except ValueError:
        raise usage(f"{value!r} is not {what} (a UUID).") from None
    return value


def stdout_console() -> Console:
    """Where commands print. On a terminal rich wraps to its width; into a pipe or a log nothing
    is wrapped, so every table row stays one line (greppable, and parsed by the e2e tests)."""
    return Console(width=None if sys.stdout.isatty() else 1000, highlight=False)
