"""Pause, resume and retry a failed phase, through the API and the CLI, against the running services.

Every boundary is made deterministic rather than raced:
- before validation: the upload marker is published first and its batches only once the
  validator knows of the pause, so the staged set completes while paused;
- between validation and enrichment: the validator is held mid-phase by a lock on its
  findings table while the pause reaches the enricher, then let go;
- a failed enrichment: a trigger in the enricher's schema refuses this tenant's assets
  until the test drops it.
Nothing is lost or done twice: findings, assets and completion events are counted exactly.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from contracts import Envelope, ImportUploaded, Tenant, topics
from contracts.producer import RecordBatcher
from tributary_cli.client import TributaryClient
from tributary_cli.testing import sql, wait_until
from tributary_cli.main import app
from tributary_cli.processes import ServiceProcess, create_api_key

pytestmark = pytest.mark.e2e

HEADER = ["hostname", "ip_address", "asset_type", "environment"]
ROWS, INVALID = 20, (4, 9, 17)  # rows with an address that is no address


def cmdb_rows(prefix: str, rows: int = ROWS, invalid: tuple[int, ...] = INVALID) -> list[dict[str, str]]:
    return [{"hostname": f"{prefix}-{i:03d}", "asset_type": "server", "environment": "production",
             "ip_address": "10.0.0.999" if i in invalid else f"10.9.{i // 256}.{i % 256}"} for i in range(1, rows + 1)]


def csv_of(rows: list[dict[str, str]]) -> bytes:
    return ("\n".join([",".join(HEADER), *(",".join(r[c] for c in HEADER) for r in rows)]) + "\n").encode()


def scalar(database_url: str, query: str, *args: Any) -> Any:
    rows = sql(database_url, query, *args)
    return rows[0][0] if rows else None


class Upstream:
    """Publishes an import's events by hand, in an order the test chooses."""

    def __init__(self, bootstrap: str, tenant: Tenant, rows: list[dict[str, str]], batch_rows: int = 5) -> None:
        self.bootstrap, self.tenant = bootstrap, tenant
        self.import_id, self.flow_id = uuid.uuid4(), uuid.uuid4()
        batcher = RecordBatcher("cmdb_export", max_rows=batch_rows)
        self.batches = [b for b in (batcher.add(n, r) for n, r in enumerate(rows, start=1)) if b is not None]
        if (last := batcher.flush()) is not None:
            self.batches.append(last)
        self.marker = ImportUploaded(category="cmdb_export", filename="by-hand.csv", file_format="events",
                                     record_count=batcher.record_count, batch_count=batcher.batch_count,
                                     checksum=batcher.checksum, columns=HEADER, source="upstream")

    def _wrap(self, payload: Any, stage_key: str) -> Envelope[Any]:
        return Envelope.wrap(payload, tenant=self.tenant, import_id=self.import_id, flow_id=self.flow_id,
                             producer="upstream:test", stage_key=stage_key)

    def _send(self, sends: list[tuple[str, Envelope[Any]]]) -> None:
        async def run() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
            await producer.start()
            try:
                for topic, env in sends:
                    await producer.send_and_wait(topic, key=env.key, value=env.encode(), headers=env.headers())
            finally:
                await producer.stop()

        asyncio.run(run())

    def publish_marker(self) -> None:
        self._send([(topics.EVENTS, self._wrap(self.marker, ""))])

    def publish_batches(self) -> None:
        self._send([(topics.RECORDS, self._wrap(b, str(b.batch_seq))) for b in self.batches])


@pytest.fixture
def upstream(stack_env: dict[str, str], tenant: Tenant) -> Callable[..., Upstream]:
    return lambda rows, **kw: Upstream(stack_env["KAFKA_BOOTSTRAP_SERVERS"], tenant, rows, **kw)


def flow_of(client: TributaryClient, flow_id: uuid.UUID | str) -> dict[str, Any] | None:
    response = client.get_flow(flow_id)
    return response.json() if response.status_code == 200 else None


def wait_flow(client: TributaryClient, flow_id: uuid.UUID | str, what: str,
              check: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> dict[str, Any]:
    return wait_until(what, lambda: (f := flow_of(client, flow_id)) is not None and check(f) and f, timeout)


def events(flow: dict[str, Any], event_type: str) -> list[dict[str, Any]]:
    return [e for e in flow["timeline"] if e["event_type"] == event_type]


def staged_status(database_url: str, schema: str, import_id: uuid.UUID | str) -> str | None:
    return scalar(database_url, f"SELECT status FROM {schema}.staged_imports WHERE import_id = $1",
                  uuid.UUID(str(import_id)))


def knows_pause(database_url: str, schema: str, import_id: uuid.UUID | str) -> bool:
    return bool(scalar(database_url, f"SELECT paused FROM {schema}.flow_control WHERE import_id = $1",
                       uuid.UUID(str(import_id))))


def assets_of(database_url: str, tenant: Tenant) -> int:
    return scalar(database_url, "SELECT count(*) FROM enricher.assets WHERE client_account_id = $1",
                  tenant.client_account_id)


def assert_exact_findings(client: TributaryClient, import_id: str) -> None:
    """One error per invalid row, none twice (however often the phase ran)."""
    issues = client.all_issues(import_id)
    keys = [(i["row_number"], i["column"], i["rule_id"]) for i in issues]
    assert len(keys) == len(set(keys)), "a finding was recorded twice"
    assert sorted(i["row_number"] for i in issues if i["severity"] == "error") == sorted(INVALID)


def assert_completed_once(flow: dict[str, Any], valid: int) -> None:
    assert flow["master"]["status"] == "completed", flow["child"]["error_message"]
    assert flow["child"]["status"] == "completed_with_errors"
    validation, enrichment = flow["child"]["phase_state"]["validation"], flow["child"]["phase_state"]["enrichment"]
    assert (validation["record_count"], validation["valid_count"], validation["invalid_count"]) == (
        ROWS, valid, ROWS - valid)
    assert (enrichment["rows_applied"], enrichment["assets_created"], enrichment["assets_updated"]) == (valid, valid, 0)
    assert len(events(flow, "ValidationCompleted")) == 1
    assert len(events(flow, "EnrichmentCompleted")) == 1
    assert [s["status"] for s in flow["steps"]] == ["completed", "completed", "completed"]


# ------------------------------------------------------------------------------------------- pause


def test_pause_before_validation_holds_it_and_resume_runs_it_once(
        client: TributaryClient, upstream: Callable[..., Upstream], database_url: str, tenant: Tenant) -> None:
    up = upstream(cmdb_rows("hold-v"))
    up.publish_marker()  # the set is incomplete until the batches come
    wait_flow(client, up.flow_id, "the flow in validation", lambda f: f["master"]["current_phase"] == "validation")

    response = client.pause_flow(up.flow_id, reason="change window")
    assert response.status_code == 202, response.text
    assert response.json()["operation"] == "pause"
    paused = client.wait_for_flow(up.flow_id, statuses=("paused",))
    assert paused["child"]["phase_state"]["pause"] | {"paused_at": None} == {
        "status": "paused", "reason": "change window", "paused_at": None, "phase": "validation", "pauses": 1}
    wait_until("the validator to know of the pause", lambda: knows_pause(database_url, "validator", up.import_id))

    up.publish_batches()  # completes the staged set while the flow is paused
    wait_until("the validator to hold the import",
               lambda: staged_status(database_url, "validator", up.import_id) == "held")
    flow = flow_of(client, up.flow_id)
    assert (flow["master"]["status"], flow["master"]["current_phase"]) == ("paused", "validation")
    assert not events(flow, "ValidationCompleted")
    assert scalar(database_url, "SELECT count(*) FROM validator.row_issues WHERE import_id = $1", up.import_id) == 0

    response = client.resume_flow(up.flow_id)
    assert response.status_code == 202, response.text
    flow = client.wait_for_flow(up.flow_id)
    assert_completed_once(flow, ROWS - len(INVALID))
    assert flow["child"]["phase_state"]["pause"]["status"] == "resumed"
    assert [e["event_type"] for e in flow["timeline"] if e["event_type"] != "PhaseProgress"] == [
        "ImportUploaded", "FlowPaused", "FlowResumed", "ValidationCompleted", "EnrichmentCompleted"]
    assert_exact_findings(client, str(up.import_id))
    assert assets_of(database_url, tenant) == ROWS - len(INVALID)
    assert staged_status(database_url, "validator", up.import_id) == "validated"


@contextmanager
def validator_stalled(database_url: str) -> Iterator[Callable[[], bool]]:
    """Hold the validator mid-phase: it waits on its findings table until the block ends.

    Yields a probe saying whether a validation is waiting on the lock right now.
    """
    with psycopg.connect(database_url) as conn:
        conn.execute("LOCK TABLE validator.row_issues IN ACCESS EXCLUSIVE MODE")

        def waiting() -> bool:
            with psycopg.connect(database_url) as probe:
                return bool(probe.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tributary-validator'"
                    " AND wait_event_type = 'Lock'").fetchone()[0])

        try:
            yield waiting
        finally:
            conn.rollback()


def test_pause_mid_validation_holds_enrichment_and_resume_continues(
        client: TributaryClient, database_url: str, tenant: Tenant) -> None:
    with validator_stalled(database_url) as validator_waiting:
        response = client.upload_bytes(csv_of(cmdb_rows("hold-e")), "hold-e.csv", "cmdb_export")
        assert response.status_code == 202, response.text
        receipt = response.json()
        flow_id, import_id = receipt["flow_id"], receipt["import_id"]
        wait_until("validation to be under way (waiting on the lock)", validator_waiting)

        response = client.pause_flow(flow_id)
        assert response.status_code == 202, response.text
        client.wait_for_flow(flow_id, statuses=("paused",))
        wait_until("the enricher to know of the pause", lambda: knows_pause(database_url, "enricher", import_id))
    # The running validation finishes; the enrichment that would follow is held.
    wait_until("the enricher to hold the import", lambda: staged_status(database_url, "enricher", import_id) == "held")
    flow = wait_flow(client, flow_id, "the validation to be projected", lambda f: events(f, "ValidationCompleted"))
    assert (flow["master"]["status"], flow["master"]["current_phase"]) == ("paused", "enrichment")
    assert flow["child"]["status"] == "paused"
    pause = events(flow, "FlowPaused")
    assert len(pause) == 1 and pause[0]["phase"] == "validation"  # it landed mid-validation
    steps = {s["step_name"]: s["status"] for s in flow["steps"]}
    assert steps == {"upload": "completed", "validation": "completed"}  # enrichment has not started
    assert flow["child"]["phase_state"]["enrichment"]["status"] == "paused"
    assert not events(flow, "EnrichmentCompleted") and assets_of(database_url, tenant) == 0

    assert client.resume_flow(flow_id).status_code == 202
    flow = client.wait_for_flow(flow_id)
    assert_completed_once(flow, ROWS - len(INVALID))
    assert_exact_findings(client, import_id)
    assert assets_of(database_url, tenant) == ROWS - len(INVALID)
    steps = {s["step_name"]: s for s in flow["steps"]}
    assert steps["enrichment"]["started_at"] >= events(flow, "FlowResumed")[0]["occurred_at"]


def test_impossible_transitions_are_409_and_other_tenants_404(
        client: TributaryClient, upstream: Callable[..., Upstream], pipeline: dict[str, ServiceProcess],
        database_url: str, client_for: Callable[[Tenant], TributaryClient]) -> None:
    # A completed flow: nothing to pause, resume or retry.
    response = client.upload_bytes(csv_of(cmdb_rows("done", rows=3, invalid=())), "done.csv", "cmdb_export")
    done = client.wait_for_flow(response.json()["flow_id"])
    assert done["master"]["status"] == "completed"
    flow_id = done["master"]["flow_id"]
    for call, words in ((client.pause_flow, "nothing left to pause"), (client.resume_flow, "not paused"),
                        (client.retry_flow, "not failed")):
        response = call(flow_id)
        assert response.status_code == 409 and words in response.json()["detail"], response.text

    # A running flow (its batches are not in yet): resume is refused, pause is accepted once.
    up = upstream(cmdb_rows("wait", rows=3, invalid=()))
    up.publish_marker()
    wait_flow(client, up.flow_id, "the flow to exist", lambda f: f["master"]["status"] == "running")
    response = client.resume_flow(up.flow_id)
    assert response.status_code == 409 and "running, not paused" in response.json()["detail"]
    assert client.retry_flow(up.flow_id).status_code == 409

    other = client_for(Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4()))
    for call in (other.pause_flow, other.resume_flow, other.retry_flow, other.get_flow):
        response = call(up.flow_id)
        assert (response.status_code, response.json()["detail"]) == (404, "flow not found")
    assert client.pause_flow(uuid.uuid4()).status_code == 404

    assert client.pause_flow(up.flow_id).status_code == 202
    client.wait_for_flow(up.flow_id, statuses=("paused",))
    response = client.pause_flow(up.flow_id)
    assert response.status_code == 409 and "already paused" in response.json()["detail"]
    # Nothing of the other tenant's requests reached the flow.
    assert [e["event_type"] for e in flow_of(client, up.flow_id)["timeline"]] == ["ImportUploaded", "FlowPaused"]

    assert client.resume_flow(up.flow_id).status_code == 202
    client.wait_for_flow(up.flow_id, statuses=("running",))
    up.publish_batches()
    flow = client.wait_for_flow(up.flow_id)
    assert flow["master"]["status"] == "completed" and len(events(flow, "EnrichmentCompleted")) == 1


def test_pause_and_resume_several_times(client: TributaryClient, upstream: Callable[..., Upstream],
                                        database_url: str, tenant: Tenant) -> None:
    """Each pause and resume is an event of its own (the flow's version is in its id)."""
    up = upstream(cmdb_rows("cycle"))
    up.publish_marker()
    wait_flow(client, up.flow_id, "the flow to exist", lambda f: f["master"]["status"] == "running")
    for _ in range(3):
        assert client.pause_flow(up.flow_id).status_code == 202
        client.wait_for_flow(up.flow_id, statuses=("paused",))
        assert client.resume_flow(up.flow_id).status_code == 202
        client.wait_for_flow(up.flow_id, statuses=("running",))
    up.publish_batches()
    flow = client.wait_for_flow(up.flow_id)
    assert_completed_once(flow, ROWS - len(INVALID))
    assert (len(events(flow, "FlowPaused")), len(events(flow, "FlowResumed"))) == (3, 3)
    assert flow["child"]["phase_state"]["pause"]["pauses"] == 3
    assert assets_of(database_url, tenant) == ROWS - len(INVALID)


# ------------------------------------------------------------------------------------------- retry


def test_retry_a_validation_failed_by_the_error_threshold(client: TributaryClient, database_url: str,
                                                          tenant: Tenant) -> None:
    assert client.put_policy("cmdb_export", max_error_rate=0.0).status_code == 200
    response = client.upload_bytes(csv_of(cmdb_rows("strict")), "strict.csv", "cmdb_export")
    receipt = response.json()
    flow_id, import_id = receipt["flow_id"], receipt["import_id"]
    flow = client.wait_for_flow(flow_id)
    assert flow["master"]["status"] == "failed"
    assert flow["child"]["phase_state"]["validation"]["code"] == "error_threshold"
    assert_exact_findings(client, import_id)

    # Only the failed phase can be retried.
    response = client.retry_flow(flow_id, phase="enrichment")
    assert response.status_code == 409 and "failed in validation" in response.json()["detail"]
    response = client.retry_flow(flow_id, phase="nonsense")
    assert response.status_code == 422

    # Retried under the same policy it fails again, as a new attempt with events of its own.
    response = client.retry_flow(flow_id)
    assert response.status_code == 202 and response.json()["phase"] == "validation", response.text
    flow = wait_flow(client, flow_id, "the second failure", lambda f: len(events(f, "ImportFailed")) == 2)
    assert flow["master"]["status"] == "failed"
    assert_exact_findings(client, import_id)  # cleared and found again, not doubled

    # The user relaxes the policy and retries: the phase runs from the staged rows.
    assert client.put_policy("cmdb_export", max_error_rate=0.5).status_code == 200
    response = client.retry_flow(flow_id)
    assert response.status_code == 202
    flow = client.wait_for_flow(flow_id, timeout=60, after=response.json()["event_id"])
    assert_completed_once(flow, ROWS - len(INVALID))
    assert flow["child"]["error_message"] is None
    validation = flow["child"]["phase_state"]["validation"]
    assert validation["attempt"] == 3
    assert [a["code"] for a in validation["previous_attempts"]] == ["error_threshold", "error_threshold"]
    assert [e["event_type"] for e in flow["timeline"] if e["event_type"] != "PhaseProgress"] == [
        "ImportUploaded", "ImportFailed", "PhaseRetryRequested", "ImportFailed", "PhaseRetryRequested",
        "ValidationCompleted", "EnrichmentCompleted"]
    assert_exact_findings(client, import_id)
    assert assets_of(database_url, tenant) == ROWS - len(INVALID)
    assert scalar(database_url, "SELECT attempt FROM validator.staged_imports WHERE import_id = $1",
                  uuid.UUID(import_id)) == 3


@contextmanager
def enricher_refuses(database_url: str, tenant: Tenant) -> Iterator[None]:
    """Every asset insert of this tenant fails in the enricher (as a bug or a constraint would)."""
    name = f"enricher.refuse_{tenant.client_account_id.hex}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                     " RAISE EXCEPTION 'the inventory refuses this tenant (test)'; END $$")
        conn.execute(f"CREATE TRIGGER refuse_{tenant.client_account_id.hex} BEFORE INSERT ON enricher.assets"
                     f" FOR EACH ROW WHEN (NEW.client_account_id = '{tenant.client_account_id}'::uuid)"
                     f" EXECUTE FUNCTION {name}()")
        try:
            yield
        finally:
            conn.execute(f"DROP TRIGGER refuse_{tenant.client_account_id.hex} ON enricher.assets")
            conn.execute(f"DROP FUNCTION {name}()")


def test_retry_an_enrichment_that_was_dead_lettered(client: TributaryClient, database_url: str,
                                                   tenant: Tenant) -> None:
    with enricher_refuses(database_url, tenant):
        response = client.upload_bytes(csv_of(cmdb_rows("refused")), "refused.csv", "cmdb_export")
        receipt = response.json()
        flow_id, import_id = receipt["flow_id"], receipt["import_id"]
        flow = client.wait_for_flow(flow_id)
        assert (flow["master"]["status"], flow["master"]["current_phase"]) == ("failed", "enrichment")
        failure = flow["child"]["phase_state"]["enrichment"]
        assert failure["code"] == "dead_lettered" and "refuses this tenant" in failure["reason"]
        # The staged set is kept, failed, for a retry.
        wait_until("the enricher to keep the set as failed",
                   lambda: staged_status(database_url, "enricher", import_id) == "failed")
        assert assets_of(database_url, tenant) == 0

    response = client.retry_flow(flow_id)
    assert response.status_code == 202 and response.json()["phase"] == "enrichment", response.text
    flow = client.wait_for_flow(flow_id, after=response.json()["event_id"])
    assert_completed_once(flow, ROWS - len(INVALID))
    assert flow["child"]["phase_state"]["enrichment"]["attempt"] == 2
    assert len(events(flow, "ImportFailed")) == 1 and len(events(flow, "PhaseRetryRequested")) == 1
    assert assets_of(database_url, tenant) == ROWS - len(INVALID)
    assert scalar(database_url, "SELECT count(*) FROM enricher.enrichment_runs WHERE import_id = $1",
                  uuid.UUID(import_id)) == 1

    # Retrying what has completed is refused.
    assert client.retry_flow(flow_id).status_code == 409


# --------------------------------------------------------------------------------------------- CLI


def test_cli_pause_resume_retry(client: TributaryClient, upstream: Callable[..., Upstream],
                                pipeline: dict[str, ServiceProcess], stack_env: dict[str, str],
                                tenant: Tenant) -> None:
    runner = CliRunner()
    env = {"TRIBUTARY_FLOW_URL": pipeline["flow-state"].url, "TRIBUTARY_USER_ID": "operator",
           "TRIBUTARY_API_KEY": client.api_key or ""}

    def cli(*args: str, tenant_env: dict[str, str] | None = None) -> Any:
        result = runner.invoke(app, ["flows", *args], env=env | (tenant_env or {}))
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    up = upstream(cmdb_rows("cli"))
    up.publish_marker()
    wait_flow(client, up.flow_id, "the flow to exist", lambda f: f["master"]["status"] == "running")
    flow_id = str(up.flow_id)

    result = cli("pause", flow_id, "--reason", "night batch", "--wait")
    assert result.exit_code == 0 and "it is now paused" in result.stdout, result.output
    result = cli("pause", flow_id)
    assert result.exit_code == 1
    assert result.stderr.strip() == "Refused (409): the flow is already paused."
    result = cli("retry", flow_id)
    assert result.exit_code == 1 and "not failed" in result.stderr
    result = cli("resume", "not-a-flow")
    assert result.exit_code == 2 and "is not a flow id" in result.stderr  # a usage error
    result = cli("resume", flow_id, "--wait")
    assert result.exit_code == 0 and "it is now running" in result.stdout, result.output

    result = cli("list", "--status", "running")
    assert result.exit_code == 0 and flow_id in result.stdout
    result = cli("show", flow_id)
    assert result.exit_code == 0 and "FlowPaused" in result.stdout and "FlowResumed" in result.stdout

    # With API keys: the tenant's key works, another tenant's key cannot see or pause the flow.
    own = create_api_key(stack_env, str(tenant.client_account_id), str(tenant.engagement_id), "cli")["api_key"]
    other = create_api_key(stack_env, str(uuid.uuid4()), str(uuid.uuid4()), "cli-other")["api_key"]
    for key in (own, other):
        wait_until("flow-state to know the key", lambda k=key: httpx.get(
            f"{pipeline['flow-state'].url}/v1/whoami", headers={"Authorization": f"Bearer {k}"}).status_code == 200)
    keyed = {"TRIBUTARY_CLIENT_ACCOUNT_ID": "", "TRIBUTARY_ENGAGEMENT_ID": ""}
    result = cli("pause", flow_id, tenant_env=keyed | {"TRIBUTARY_API_KEY": other})
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"Flow {flow_id} not found for this API key's tenant.",
                                          "hint: `tributary flows list` shows the flows of this tenant"]
    result = cli("show", flow_id, tenant_env=keyed | {"TRIBUTARY_API_KEY": own})
    assert result.exit_code == 0 and "status running/running" in result.stdout, result.output
    result = cli("pause", flow_id, tenant_env={"TRIBUTARY_API_KEY": "trb_nope_" + "x" * 43})
    assert result.exit_code == 1 and result.stderr.startswith("Not allowed: the API key is not valid")

    # A validation failed by a strict policy, retried from the CLI once the policy is relaxed.
    assert client.put_policy("cmdb_export", max_error_rate=0.0).status_code == 200
    up.publish_batches()
    failed = client.wait_for_flow(up.flow_id)
    assert failed["master"]["status"] == "failed"
    result = cli("retry", flow_id, "--phase", "enrichment")
    assert result.exit_code == 1 and "failed in validation" in result.stderr
    result = cli("retry", flow_id, "--phase", "bogus")
    assert result.exit_code == 2 and "Unknown phase 'bogus'" in result.stderr
    assert client.put_policy("cmdb_export", max_error_rate=0.5).status_code == 200
    result = cli("retry", flow_id, "--wait")
    assert result.exit_code == 0 and "Retry of the failed phase requested" in result.stdout, result.output
    flow = client.wait_for_flow(up.flow_id)
    assert_completed_once(flow, ROWS - len(INVALID))
    assert {e["event_type"]: e for e in flow["timeline"]}["FlowPaused"]["detail"] == {"reason": "night batch"}
