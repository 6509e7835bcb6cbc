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

from . import devstack, processes
from .client import TributaryClient

app = typer.Typer(help="Tributary: event-sourced imports of migration-assessment data.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
dev = typer.Typer(help="The local broker and database (no Docker needed).", no_args_is_help=True)
app.add_typer(dev, name="dev")
# Wide enough for the summary table when output is piped (make, CI logs).
console = Console(width=None if sys.stdout.isatty() else 160)
STATE_DIR = Path(os.environ.get("TRIBUTARY_STATE_DIR", ".tributary"))
DEMO_TENANT = Tenant(client_account_id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
                     engagement_id=uuid.UUID("00000000-0000-4000-8000-000000000002"))


def _stack_env() -> dict[str, str]:
    env = devstack.load_env(STATE_DIR)
    for key in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    if not env.get("DATABASE_URL") or not env.get("KAFKA_BOOTSTRAP_SERVERS"):
        console.print("[red]No broker or database configured.[/] Run `tributary dev up` first, or set "
                      "DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS.")
        raise typer.Exit(2)
    return env


@dev.command("up")
def dev_up() -> None:
    """Start the embedded broker and PostgreSQL unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are set."""
    state = devstack.up(STATE_DIR)
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
        client = TributaryClient(procs["ingest"].url, procs["flow-state"].url, DEMO_TENANT, user_id="demo")
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


if __name__ == "__main__":
    app()
