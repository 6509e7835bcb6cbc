"""``tributary``: the operator's front door."""

from __future__ import annotations

import os
import sys
import time
import uuid
from importlib import resources
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from contracts import Category, Tenant

from . import devstack, import_command, processes
from .assets_commands import assets
from .client import TributaryClient
from .connection import stdout_console
from .errors import CliError, ErrorHandlingGroup, first_line, usage
from .flow_commands import flows

# ErrorHandlingGroup: every command's errors become one sentence and a hint (errors.py).
app = typer.Typer(help="Tributary: event-sourced imports of migration-assessment data.", no_args_is_help=True,
                  pretty_exceptions_enable=False, cls=ErrorHandlingGroup)
dev = typer.Typer(help="The local broker and database (no Docker needed).", no_args_is_help=True)
app.add_typer(dev, name="dev")
app.add_typer(flows, name="flows")
app.add_typer(assets, name="assets")
# Wide enough for the summary table when output is piped (make, CI logs).
console = Console(width=None if sys.stdout.isatty() else 160)
import_command.register(app, stdout_console())
STATE_DIR = Path(os.environ.get("TRIBUTARY_STATE_DIR", ".tributary"))
DEMO_TENANT = Tenant(client_account_id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
                     engagement_id=uuid.UUID("00000000-0000-4000-8000-000000000002"))


def _stack_env(needs: tuple[str, ...] = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")) -> dict[str, str]:
    """The dev stack's settings, overridden by the environment's; ``needs``: those the command uses."""
    env = devstack.load_env(STATE_DIR)
    for key in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    if not all(env.get(key) for key in needs):
        raise usage("No broker or database configured." if len(needs) > 1 else "No database configured.",
                    f"run `tributary dev up` first, or set {' and '.join(needs)}")
    return env


keys = typer.Typer(help="API keys: every request names its tenant with one.", no_args_is_help=True)
app.add_typer(keys, name="keys")


@keys.command("create")
def keys_create(
    client_account_id: uuid.UUID = typer.Option(..., help="the tenant's client account"),
    engagement_id: uuid.UUID = typer.Option(..., help="the tenant's engagement"),
    label: str | None = typer.Option(None, help="what the key is for (shown in `keys list`)"),
) -> None:
    """Create an API key for a tenant. The key is printed once; only its hash is kept."""
    created = processes.create_api_key(_stack_env(), str(client_account_id), str(engagement_id), label)
    console.print(f"key id   {created['key_id']}\napi key  {created['api_key']}\n"
                  "Send it as 'Authorization: Bearer <api key>'. It is not shown again.")


@keys.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key: every service refuses it within moments."""
    import subprocess

    done = subprocess.run([sys.executable, "-m", "ingest", "keys", "revoke", key_id],
                          env=os.environ | _stack_env(), capture_output=True, text=True)
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        raise CliError(f"Revoking key {key_id} failed: {said[-1] if said else 'no reason given'}",
                       "`tributary keys create` shows key ids when it makes a key")
    console.print(f"key {key_id} revoked")


@dev.command("up")
def dev_up() -> None:
    """Start the embedded broker and PostgreSQL unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are set."""
    try:
        state = devstack.up(STATE_DIR)
    except (RuntimeError, TimeoutError) as exc:
        if os.environ.get("TRIBUTARY_DEBUG"):
            raise
        raise CliError(f"Could not start the local broker or database: {first_line(exc)}",
                       "run again with TRIBUTARY_DEBUG=1 for the full output; `tributary dev down` stops what "
                       "did start") from None
    console.print(f"broker   {state.kafka_bootstrap_servers}" + (" (started)" if state.started_broker else ""))
    console.print(f"database {state.database_url}" + (" (started)" if state.started_postgres else ""))
    console.print(f"environment written to {STATE_DIR / 'dev.env'}")


@dev.command("down")
def dev_down() -> None:
    """Stop what `tributary dev up` started."""
    devstack.down(STATE_DIR)
    console.print("dev stack stopped")


@app.command()
def migrate() -> None:
    """Apply every service's database migrations."""
    processes.migrate(_stack_env())
    console.print("migrations applied")


@app.command()
def run() -> None:
    """Run the four services as separate processes until Ctrl-C."""
    env = _stack_env()
    processes.migrate(env)
    procs = processes.start_all(env, STATE_DIR / "logs")
    for p in procs.values():
        console.print(f"{p.name:<10} {p.url}  (pid {p.process.pid if p.process else '?'})")
    console.print(f"logs in {STATE_DIR / 'logs'}; Ctrl-C stops")
    try:
        while all(p.process is not None and p.process.poll() is None for p in procs.values()):
            time.sleep(0.5)
        console.print("[red]a service exited; stopping the others[/]")
    except KeyboardInterrupt:
        pass
    finally:
        processes.stop_all(procs)


@app.command()
def demo() -> None:
    """Start the stack, import the bundled sample of every category and print each flow's final state."""
    state = devstack.up(STATE_DIR)
    env = {"DATABASE_URL": state.database_url, "KAFKA_BOOTSTRAP_SERVERS": state.kafka_bootstrap_servers}
    processes.migrate(env)
    ports = {name: devstack.free_port() for name in processes.SERVICES}
    procs = processes.start_all(env, STATE_DIR / "logs", ports)
    try:
        key = processes.create_api_key(env, str(DEMO_TENANT.client_account_id), str(DEMO_TENANT.engagement_id),
                                       "demo")["api_key"]
        client = TributaryClient(procs["ingest"].url, procs["flow-state"].url, DEMO_TENANT, user_id="demo",
                                 api_key=key)
        processes.wait_for_key(procs.values(), client.headers)
        table = Table(title="Demo imports")
        for col in ("category", "flow", "status", "phase", "progress", "rows", "valid", "enrichment"):
            table.add_column(col)
        for category in Category:
            sample = resources.files("tributary_cli") / "samples" / f"{category.value}.csv"
            with resources.as_file(sample) as path:
                response = client.upload(path, category.value)
            response.raise_for_status()
            receipt = response.json()
            flow = client.wait_for_flow(receipt["flow_id"], timeout=60)
            child = flow["child"]
            enrichment = child["phase_state"].get("enrichment", {})
            summary = ", ".join(f"{k}={v}" for k, v in enrichment.items()
                                if isinstance(v, int) and v and k != "rows_applied")
            table.add_row(category.value, receipt["flow_id"][:8], f"{flow['master']['status']}/{child['status']}",
                          child["current_phase"], f"{child['progress_percentage']:.0f}%",
                          str(receipt["record_count"]),
                          str(child["phase_state"].get("validation", {}).get("valid_count", "-")), summary or "-")
        console.print(table)
    finally:
        processes.stop_all(procs)
    console.print("services stopped; the broker and database keep running (`tributary dev down` stops them)")


@app.command("openapi")
def openapi(directory: Path = typer.Argument(Path("docs/openapi"), help="where to write <service>.json")) -> None:
    """Write the OpenAPI document of each service's HTTP API (`make openapi` writes docs/openapi/)."""
    from . import openapi as openapi_docs

    for path in openapi_docs.export(directory):
        print(path)


# --- rebuild, replay, checksums -------------------------------------------------------------
# Rebuilds run in the services' own modules (`python -m flow_state.rebuild`): the projection code
# is theirs, and this command imports no service.
flow_state_ops = typer.Typer(help="flow-state operations: rebuild the flow tables from the event log.",
                             no_args_is_help=True)
enricher_ops = typer.Typer(help="enricher operations: rebuild the inventory from the event log.",
                           no_args_is_help=True)
app.add_typer(flow_state_ops, name="flow-state")
app.add_typer(enricher_ops, name="enricher")

SWAP_HELP = ("swap the rebuilt tables in (one transaction; the live service keeps running) when they verify "
             "equal at the live consumer's exact position")


def _rebuild(module: str, swap: bool, allow_differences: bool, schema: str | None, lock_timeout: float,
             discard: bool, as_json: bool, readers: int | None = None) -> None:
    import subprocess

    env = _stack_env()
    argv = [sys.executable, "-m", module, "--lock-timeout", str(lock_timeout)]
    argv += ["--swap"] if swap else []
    argv += ["--allow-differences"] if allow_differences else []
    argv += ["--schema", schema] if schema else []
    argv += ["--discard"] if discard else []
    argv += ["--json"] if as_json else []
    argv += ["--readers", str(readers)] if readers else []
    raise typer.Exit(subprocess.run(argv, env=os.environ | env).returncode)


@flow_state_ops.command("rebuild")
def flow_state_rebuild(
    swap: bool = typer.Option(False, "--swap", help=SWAP_HELP),
    allow_differences: bool = typer.Option(False, "--allow-differences",
                                           help="swap even when the tables differ (after a projection fix)"),
    schema: str | None = typer.Option(None, help="rebuild into (or resume) this schema"),
    lock_timeout: float = typer.Option(60.0, help="seconds to wait for the live consumer's batch when fencing it"),
    discard: bool = typer.Option(False, "--discard", help="drop the rebuilt schema afterwards unless swapped in"),
    as_json: bool = typer.Option(False, "--json", help="print the full report as JSON"),
    readers: int | None = typer.Option(None, min=1, help="processes replaying partitions side by side "
                                                         "(default: one per core)"),
) -> None:
    """Replay imports.events.v1 into fresh flow tables, verify them against the live ones, optionally swap."""
    _rebuild("flow_state.rebuild", swap, allow_differences, schema, lock_timeout, discard, as_json, readers)


@enricher_ops.command("rebuild")
def enricher_rebuild(
    swap: bool = typer.Option(False, "--swap", help=SWAP_HELP),
    allow_differences: bool = typer.Option(False, "--allow-differences",
                                           help="swap even when the tables differ"),
    schema: str | None = typer.Option(None, help="rebuild into (or resume) this schema"),
    lock_timeout: float = typer.Option(60.0, help="seconds to wait for the live consumer's batch when fencing it"),
    discard: bool = typer.Option(False, "--discard", help="drop the rebuilt schema afterwards unless swapped in"),
    as_json: bool = typer.Option(False, "--json", help="print the full report as JSON"),
) -> None:
    """Replay validated records and lifecycle events into a fresh inventory, verify it, optionally swap."""
    _rebuild("enricher.rebuild", swap, allow_differences, schema, lock_timeout, discard, as_json)


# Each stage's own module runs the pass (`python -m validator.purge`): what it keeps is the service's.
STAGING_SERVICES = ("validator", "enricher")


@app.command("purge-staged-rows")
def purge_staged_rows(
    older_than_days: float | None = typer.Option(
        None, min=0, help="imports finished more than this many days ago (0: every finished one; "
                          "default: TRIBUTARY_STAGED_ROWS_RETENTION_DAYS, 30)"),
    service: list[str] = typer.Option(list(STAGING_SERVICES), "--service",
                                      help="validator or enricher (repeatable; default: both)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON report per service"),
) -> None:
    """Delete the staged rows of finished imports now, as the services' hourly pass would (docs/operations.md)."""
    import subprocess

    unknown = sorted(set(service) - set(STAGING_SERVICES))
    if unknown:
        raise usage(f"No staging service named {', '.join(unknown)}.", "use --service validator or --service enricher")
    env = os.environ | _stack_env(needs=("DATABASE_URL",))  # no broker: a pass only deletes rows
    codes = []
    for name in dict.fromkeys(service):  # each service's pass, whether or not the one before failed
        argv = [sys.executable, "-m", f"{name}.purge"]
        argv += ["--older-than-days", repr(older_than_days)] if older_than_days is not None else []
        argv += ["--json"] if as_json else []
        codes.append(subprocess.run(argv, env=env).returncode)
    raise typer.Exit(next((code for code in codes if code), 0))


@app.command("replay")
def replay_import(
    import_id: uuid.UUID,
    dry_run: bool = typer.Option(False, "--dry-run", help="only list what would be re-published"),
    wait: bool = typer.Option(True, help="wait until every consumer has read what was re-published"),
    verify: bool = typer.Option(False, "--verify",
                                help="checksum every service's tables before and after (needs a quiet system)"),
    timeout: float = typer.Option(60.0, help="seconds to wait for the consumers"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Re-publish every event of one import, byte for byte, to its topics: consumers dedupe, so no table changes."""
    import json

    from . import operations

    report = operations.run(operations.replay(operations.settings_from(_stack_env()), import_id, dry_run=dry_run,
                                              wait=wait, verify=verify, timeout=timeout))
    if as_json:
        print(json.dumps(report))
    else:
        console.print(f"import {import_id}: {report['messages']} messages "
                      + ", ".join(f"{t} {n}" for t, n in report["by_topic"].items() if n))
        if "republished" in report:
            console.print(f"re-published {report['republished']}")
        consumers = report.get("consumers")
        if consumers:
            console.print("consumers caught up" if consumers["caught_up"] else f"[red]lagging:[/] {consumers['lagging']}")
        if "changed" in report:
            console.print(f"{report['tables']} tables, unchanged" if not report["changed"]
                          else "[red]changed:[/]\n" + "\n".join(report["changed"]))
    failed = (report.get("consumers") and not report["consumers"]["caught_up"]) or report.get("changed")
    raise typer.Exit(1 if failed else 0)


@app.command("checksums")
def checksums(schema: list[str] = typer.Option(None, "--schema", help="a schema (repeatable); default: every service's")
              ) -> None:
    """Rows and checksum of every table of the service schemas (consumer offsets aside)."""
    from . import operations

    schemas = tuple(schema) if schema else operations.SERVICE_SCHEMAS
    result = operations.run(operations.digests(operations.settings_from(_stack_env()), schemas))
    table = Table(title="Table checksums")
    for col in ("schema", "table", "rows", "md5"):
        table.add_column(col)
    for name, tables in result.items():
        for t, d in tables.items():
            table.add_row(name, t, str(d.rows), d.digest)
    console.print(table)


if __name__ == "__main__":
    app()
