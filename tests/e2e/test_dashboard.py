"""The web dashboard served by flow-state, in a real browser against the running pipeline.

Headless Chromium is Debian's (/usr/bin/chromium; `.ci/run` installs it), driven by Playwright
without its own browser downloads. The page talks only to flow-state: uploads and findings are
forwarded to ingest and the validator, live updates come from the status topic as server-sent
events (read with fetch(), since the key travels in the Authorization header).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts import Tenant
from tributary_cli.client import TributaryClient
from tributary_cli.testing import ClientFactory

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
SAMPLES = resources.files("tributary_cli") / "samples"
DEADLINE_S = 90  # an import of a few rows takes well under a second; this bounds a broken run
FINDINGS_PAGE_SIZE = 10  # flow.js FINDINGS_PAGE_SIZE
VALIDATION_FIELDS = ("record_count", "valid_count", "invalid_count", "error_count", "warning_count")


def cmdb_csv(rows: int, invalid_every: int) -> bytes:
    """hostname,ip_address rows; every ``invalid_every``-th row has an IP address that cannot be."""
    lines = ["hostname,ip_address"]
    for i in range(1, rows + 1):
        ip = f"10.1.{i}.999" if i % invalid_every == 0 else f"10.1.{i}.10"
        lines.append(f"dash-host-{i:03d},{ip}")
    return ("\n".join(lines) + "\n").encode()


def api_key(client: TributaryClient) -> str:
    assert client.api_key
    return client.api_key


# --- the stream's tenant isolation (no browser) --------------------------------------------------

def sse(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """(event, data) pairs of a text/event-stream response; comments (keep-alives) skipped."""
    name, data = "message", []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)


def read_until_completed(events: Iterator[tuple[str, Any]], flow_id: str) -> list[dict[str, Any]]:
    """Every ``status`` event up to and including the one that shows ``flow_id`` completed."""
    seen = []
    deadline = time.monotonic() + DEADLINE_S
    for name, data in events:
        assert name == "status", (name, data)
        seen.append(data)
        if data["flow_id"] == flow_id and data["status"] == "completed":
            return seen
        assert time.monotonic() < deadline, f"flow {flow_id} not completed on the stream in {DEADLINE_S}s: {seen}"
    raise AssertionError(f"the stream ended before flow {flow_id} completed: {seen}")


def open_stream(client: TributaryClient, key: str | None) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    # A read timeout longer than the heartbeat (15 s): a silent stream fails the test instead of hanging it.
    return httpx.stream("GET", f"{client.flow_url}/v1/dashboard/stream", headers=headers,
                        timeout=httpx.Timeout(10, read=40))


def test_the_stream_carries_only_the_keys_tenants_flows(client_for: ClientFactory) -> None:
    alice = client_for(Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4()))
    bob = client_for(Tenant(client_account_id=uuid.uuid4(), engagement_id=uuid.uuid4()))
    with open_stream(alice, None) as anonymous:
        assert anonymous.status_code == 401

    with open_stream(alice, api_key(alice)) as a_response, open_stream(bob, api_key(bob)) as b_response:
        assert (a_response.status_code, b_response.status_code) == (200, 200)
        assert a_response.headers["content-type"].startswith("text/event-stream")
        a_events, b_events = sse(a_response), sse(b_response)
        # Fresh tenants: the snapshot each stream starts with is empty.
        assert next(a_events) == ("snapshot", {"items": []})
        assert next(b_events) == ("snapshot", {"items": []})

        bob_flow = bob.upload_bytes(cmdb_csv(5, 99), "bob.csv", "cmdb_export").json()["flow_id"]
        bob_seen = read_until_completed(b_events, bob_flow)
        # The hub hands a status to every matching stream at once, so had Bob's statuses leaked to
        # Alice they would be queued on her stream before anything of her own upload below.
        alice_flow = alice.upload_bytes(cmdb_csv(5, 99), "alice.csv", "cmdb_export").json()["flow_id"]
        alice_seen = read_until_completed(a_events, alice_flow)

    assert {s["flow_id"] for s in alice_seen} == {alice_flow}
    assert {s["flow_id"] for s in bob_seen} == {bob_flow}
    # Versions arrive in order (one partition per flow) and end at the projected flow's version.
    for seen, client, flow_id in ((alice_seen, alice, alice_flow), (bob_seen, bob, bob_flow)):
        versions = [s["version"] for s in seen]
        assert versions == sorted(set(versions))
        assert versions[-1] == client.get_flow(flow_id).json()["master"]["version"]

    # A stream opened now starts from the tables: its tenant's flow only.
    with open_stream(alice, api_key(alice)) as again:
        name, data = next(sse(again))
    assert name == "snapshot"
    assert [(f["flow_id"], f["status"]) for f in data["items"]] == [(alice_flow, "completed")]
    # The polling endpoint answers the same, and another tenant's flow is not there.
    polled = httpx.get(f"{alice.flow_url}/v1/dashboard/flows", headers=alice.headers, timeout=10).json()
    assert [f["flow_id"] for f in polled["items"]] == [alice_flow]


# --- the page in a browser -----------------------------------------------------------------------

@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # The environment's Chromium, not a Playwright browser download (there is none to download here).
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    path = Path(os.environ.get("TRIBUTARY_TEST_LOGS") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


class Requests:
    """The URLs of the requests a page made, so a test can tell which channel fed it."""

    def __init__(self, page: Any) -> None:
        self.urls: list[str] = []
        page.on("request", lambda request: self.urls.append(request.url))

    def count(self, path: str) -> int:
        return sum(1 for url in self.urls if url.split("?")[0].endswith(path))

    def clear(self) -> None:
        self.urls.clear()


def drop_file(page: Any, selector: str, name: str, content: bytes) -> None:
    """What a drag and drop of a file delivers to the page: drag events carrying a DataTransfer with the file."""
    transfer = page.evaluate_handle(
        "([name, text]) => { const t = new DataTransfer();"
        " t.items.add(new File([text], name, {type: 'text/csv'})); return t; }", [name, content.decode()])
    target = page.locator(selector)
    for event in ("dragenter", "dragover", "drop"):
        target.dispatch_event(event, {"dataTransfer": transfer})


def uploaded_flow(page: Any, category: str) -> str:
    result = page.locator(f'[data-result="{category}"][data-state="uploaded"]')
    result.wait_for(timeout=DEADLINE_S * 1000)
    return result.get_attribute("data-flow-id")


def cells(row: Any) -> list[str]:
    return [c.strip() for c in row.locator("th, td").all_inner_texts()]


def fmt(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"  # Intl.NumberFormat in the en-US locale


def test_dashboard_upload_live_list_flow_page_and_polling_fallback(
        client: TributaryClient, browser: Any, log_dir: Path) -> None:
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(DEADLINE_S * 1000)  # each wait is for a condition; this only bounds a broken run
    page = context.new_page()
    errors: list[str] = []  # uncaught exceptions and console errors of the page
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    requests = Requests(page)
    page.goto(f"{client.flow_url}/dashboard/")

    # The key, asked for once: a wrong one is refused, the right one opens the live list.
    page.get_by_role("textbox", name="API key").fill("not-a-key")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("alert").filter(has_text="not valid").wait_for()
    page.get_by_role("textbox", name="API key").fill(api_key(client))
    page.get_by_role("button", name="Continue").click()
    page.locator('body[data-live="stream"]').wait_for()
    assert page.evaluate("sessionStorage.getItem('tributary.apiKey')") == api_key(client)
    assert [t.strip() for t in page.locator(".tile h3").all_inner_texts()] == [
        "CMDB export", "Application discovery", "Infrastructure", "Sensitive data"]

    # Drag and drop a CMDB file with 13 of 40 rows invalid: completes with errors (threshold 50 %).
    drop_file(page, '[data-drop="cmdb_export"]', "dash-cmdb.csv", cmdb_csv(40, 3))
    flow_id = uploaded_flow(page, "cmdb_export")
    row = page.locator(f'#flows tr[data-flow-id="{flow_id}"][data-status="completed"]')
    row.wait_for(timeout=DEADLINE_S * 1000)
    # Fed by the stream alone: the page never polled.
    assert (requests.count("/v1/dashboard/stream"), requests.count("/v1/dashboard/flows")) == (1, 0)
    assert cells(row)[:3] == ["dash-cmdb.csv", "CMDB export", "completed (completed with errors)"]
    assert row.locator('[data-field="progress"]').inner_text() == "100%"
    assert row.locator('[data-phase-status="done"]').count() == 4
    page.screenshot(path=str(log_dir / "dashboard-list.png"), full_page=True)

    # The flow page shows the API's numbers.
    flow = client.get_flow(flow_id).json()
    state = flow["child"]["phase_state"]
    assert (state["validation"]["record_count"], state["validation"]["valid_count"],
            state["validation"]["invalid_count"], state["enrichment"]["assets_created"]) == (40, 27, 13, 27)
    row.get_by_role("link").click()
    page.locator('#flow-body [data-field="assets_created"]').wait_for()
    assert page.locator("#flow-title").inner_text() == "dash-cmdb.csv · CMDB export"
    for key in VALIDATION_FIELDS:
        assert page.locator(f'#flow-body [data-field="{key}"]').inner_text() == fmt(state["validation"][key]), key
    enrichment_shown = page.locator("#flow-body .counts").nth(1).locator("dd[data-field]")
    shown = {enrichment_shown.nth(i).get_attribute("data-field"): enrichment_shown.nth(i).inner_text()
             for i in range(enrichment_shown.count())}
    expected = {k: fmt(v) for k, v in state["enrichment"].items() if isinstance(v, int) and k in shown}
    assert shown == expected and shown["assets_created"] == "27" and shown["rows_applied"] == "27"
    assert [r.get_attribute("data-step") for r in page.locator("table.steps tbody tr").all()] == [
        s["step_name"] for s in flow["steps"]]
    assert [e.get_attribute("data-event-type") for e in page.locator(".timeline li").all()] == [
        e["event_type"] for e in flow["timeline"]]

    # Findings, page by page, as the validator pages them.
    import_id = flow["child"]["data_import_id"]
    for number in (1, 2):
        if number == 2:
            page.get_by_role("button", name="Next page").click()
        status = page.locator(f'.pager-status[data-page="{number}"]')
        status.wait_for()
        issues = client.list_issues(import_id, page=number, page_size=FINDINGS_PAGE_SIZE).json()
        assert issues["total"] == 13
        assert status.inner_text() == f"Page {number} of 2 · 13 findings"
        shown_rows = [cells(r) for r in page.locator("table.issues tbody tr").all()]
        assert shown_rows == [[fmt(i["row_number"]), i["column"] or "—", i["rule_id"], i["severity"], i["message"],
                               i["value"] if i["value"] is not None else "—"] for i in issues["items"]]
        assert len(shown_rows) == (10 if number == 1 else 3)
    assert {r[0] for r in ([cells(r) for r in page.locator("table.issues tbody tr").all()])} == {
        "33", "36", "39"}
    page.screenshot(path=str(log_dir / "dashboard-flow.png"), full_page=True)

    # Polling fallback: with the stream turned off, a new import still shows up and completes.
    requests.clear()
    page.goto(f"{client.flow_url}/dashboard/?live=poll")  # same tab: the key is still in sessionStorage
    page.locator('body[data-live="polling"]').wait_for()
    page.locator("#file-app_discovery").set_input_files(files=[{
        "name": "apps.csv", "mimeType": "text/csv", "buffer": (SAMPLES / "app_discovery.csv").read_bytes()}])
    second = uploaded_flow(page, "app_discovery")
    page.locator(f'#flows tr[data-flow-id="{second}"][data-status="completed"]').wait_for(timeout=DEADLINE_S * 1000)
    assert page.locator(f'#flows tr[data-flow-id="{flow_id}"][data-status="completed"]').count() == 1
    # Every flow done: the next poll is the slow one.
    page.locator("#live-state", has_text="Updating every 15 s").wait_for(timeout=DEADLINE_S * 1000)
    assert requests.count("/v1/dashboard/stream") == 0 and requests.count("/v1/dashboard/flows") >= 1
    page.screenshot(path=str(log_dir / "dashboard-polling.png"), full_page=True)

    # The same when the stream is wanted but cannot be had (here: every attempt fails at the network).
    requests.clear()
    page.route("**/v1/dashboard/stream", lambda route: route.abort())
    page.goto(f"{client.flow_url}/dashboard/")
    page.locator('body[data-live="polling"]').wait_for()
    page.locator("#file-infrastructure").set_input_files(files=[{
        "name": "infra.csv", "mimeType": "text/csv", "buffer": (SAMPLES / "infrastructure.csv").read_bytes()}])
    third = uploaded_flow(page, "infrastructure")
    page.locator(f'#flows tr[data-flow-id="{third}"][data-status="completed"]').wait_for()
    assert requests.count("/v1/dashboard/stream") >= 1 and requests.count("/v1/dashboard/flows") >= 1
    assert page.locator("#flows tbody tr").count() == 3
    context.close()
    # The failed requests are the wrong key's check and the blocked streams, reported on the console.
    assert errors[0] == "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    assert set(errors[1:]) <= {"Failed to load resource: net::ERR_FAILED"}, errors


def test_the_page_and_its_headers(client: TributaryClient) -> None:
    """Served as package data with a strict policy: same-origin scripts only, nothing inline."""
    page = httpx.get(f"{client.flow_url}/dashboard/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script type=\"module\" src=\"app.js\"></script>" in page.text
    assert httpx.get(f"{client.flow_url}/dashboard/app.js", timeout=10).headers["content-type"].startswith(
        "text/javascript")
    assert httpx.get(f"{client.flow_url}/dashboard/..%2Fapi.py", timeout=10).status_code == 404
    assert httpx.get(f"{client.flow_url}/dashboard", timeout=10, follow_redirects=False).status_code == 308
    # The forwarded endpoints check the key before forwarding anything.
    rejected = httpx.post(f"{client.flow_url}/v1/dashboard/imports", files={"file": ("x.csv", b"hostname\na\n")},
                          data={"category": "cmdb_export"}, timeout=10)
    assert rejected.status_code == 401
    # …and pass ingest's answer through unchanged: a bad file is named precisely.
    content = b"hostname;ip_address\nweb-1,10.0.0.1\n"
    bad = httpx.post(f"{client.flow_url}/v1/dashboard/imports", headers=client.headers,
                     files={"file": ("hosts.csv", content)}, data={"category": "cmdb_export"}, timeout=30)
    direct = client.upload_bytes(content, "hosts.csv", "cmdb_export")
    assert (bad.status_code, bad.json()) == (422, direct.json())
    assert bad.json()["detail"]["code"] == "mixed_delimiter"
