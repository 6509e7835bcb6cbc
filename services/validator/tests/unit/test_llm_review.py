"""The LLM review agent, driven through the real litellm call path with its offline mocks.

litellm 1.82.6 mocks: ``mock_response="<text>"`` answers with that text and reports usage
of 10 prompt + 20 completion tokens; ``mock_response="litellm.InternalServerError"`` raises
that error; ``mock_timeout=True`` sleeps ``timeout`` seconds then raises ``litellm.Timeout``;
``mock_delay`` sleeps before answering. No network is reached: the model is a known OpenAI
name (so the price map applies) and every call carries a mock.
"""

from __future__ import annotations

import os

# Before litellm is imported anywhere: no download of the price map.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import json
import socket
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from contracts import Category
from validator.llm_review import (
    LlmUsage,
    ReviewConfig,
    build_request,
    is_sensitive_column,
    review_import,
)
from validator.rules.model import Finding

MODEL = "gpt-4o-mini"
# gpt-4o-mini in litellm's bundled price map, for the mock's 10 prompt + 20 completion tokens.
MOCK_COST = 10 * 0.15e-6 + 20 * 0.6e-6

COLUMNS = ["hostname", "ip_address", "os", "admin_password", "ownerEmail", "api_key", "serial_number"]
SAMPLE: list[tuple[int, dict[str, str | None]]] = [
    (2, {"hostname": "web-01", "ip_address": "10.0.0.1", "os": "Windows 95", "admin_password": "hunter2",
         "ownerEmail": "ann@example.com", "api_key": "sk-live-123", "serial_number": "SN1"}),
    (3, {"hostname": "web-02", "ip_address": "10.0.0.2", "os": "Ubuntu 22.04", "admin_password": "swordfish",
         "ownerEmail": "bob@example.com", "api_key": "sk-live-456", "serial_number": None}),
]
SECRETS = ("hunter2", "swordfish", "ann@example.com", "bob@example.com", "sk-live-123", "sk-live-456")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to resolve or connect fails loudly instead of reaching a provider."""
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the LLM review tests must not touch the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


class FakeLedger:
    def __init__(self, spent: float = 0.0) -> None:
        self.rows: list[LlmUsage] = []
        self.preexisting_spend = spent

    async def spent_usd(self, import_id: uuid.UUID) -> float:
        return self.preexisting_spend + sum(r.cost_usd for r in self.rows if r.import_id == import_id)

    async def cached_response(self, import_id: uuid.UUID, request_hash: str) -> str | None:
        return next((r.response_text for r in self.rows if r.import_id == import_id
                     and r.request_hash == request_hash and r.outcome == "ok"), None)

    async def record(self, usage: LlmUsage) -> None:
        self.rows.append(usage)


class Calls:
    """A spy around the real litellm.acompletion, optionally adding litellm options."""

    def __init__(self, real: Callable[..., Any], **extra: Any) -> None:
        self.real, self.extra = real, extra
        self.messages: list[list[dict[str, str]]] = []

    async def __call__(self, **kwargs: Any) -> Any:
        self.messages.append(kwargs["messages"])
        return await self.real(**kwargs, **self.extra)


@pytest.fixture
def litellm_calls(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Calls]:
    import litellm

    def install(**extra: Any) -> Calls:
        spy = Calls(litellm.acompletion, **extra)
        monkeypatch.setattr(litellm, "acompletion", spy)
        return spy

    return install


def answer(*findings: dict[str, Any]) -> str:
    return json.dumps({"findings": list(findings)})


async def run(ledger: FakeLedger, config: ReviewConfig, *, import_id: uuid.UUID | None = None,
              category: Category = Category.CMDB_EXPORT, columns: list[str] = COLUMNS,
              sample: list[tuple[int, dict[str, str | None]]] = SAMPLE) -> list[Finding]:
    return await review_import(ledger, config, client_account_id=uuid.UUID(int=1), engagement_id=uuid.UUID(int=2),
                               import_id=import_id or uuid.UUID(int=3), category=category, columns=columns,
                               sample=sample)


async def test_a_valid_answer_becomes_exact_warnings_and_is_recorded(litellm_calls: Callable[..., Calls]) -> None:
    calls = litellm_calls()
    mock = answer({"row_number": 2, "column": "os", "message": "Windows 95 is not a server OS"},
                  {"row_number": 3, "column": "no_such_column", "message": "naming differs from row 2"},
                  {"row_number": 99, "column": "os", "message": "a row that was never sent"})
    ledger = FakeLedger()

    findings = await run(ledger, ReviewConfig(model=MODEL, mock_response=mock))

    assert findings == [
        Finding(2, "os", "llm_review", "warning", "Windows 95 is not a server OS", value=None),
        Finding(3, None, "llm_review", "warning", "naming differs from row 2", value=None),
    ]
    assert len(calls.messages) == 1
    [row] = ledger.rows
    assert (row.outcome, row.model, row.prompt_tokens, row.completion_tokens) == ("ok", MODEL, 10, 20)
    assert row.cost_usd == pytest.approx(MOCK_COST)
    assert row.response_text == mock
    assert (row.client_account_id, row.engagement_id, row.import_id) == (
        uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3))
    assert len(row.request_hash) == 64 and row.latency_ms >= 0


async def test_json_inside_a_fence_is_accepted(litellm_calls: Callable[..., Calls]) -> None:
    litellm_calls()
    mock = "Here you go:\n```json\n" + answer({"row_number": 3, "column": None, "message": "odd"}) + "\n```\n"

    findings = await run(FakeLedger(), ReviewConfig(model=MODEL, mock_response=mock))

    assert findings == [Finding(3, None, "llm_review", "warning", "odd", value=None)]


@pytest.mark.parametrize("mock", ["Nothing looks wrong to me.", '{"findings": [{"row": 2}]}',
                                  '{"findings": [{"row_number": "two", "message": "x"}]}', "  ", "null"])
async def test_a_malformed_answer_is_one_import_level_warning(litellm_calls: Callable[..., Calls],
                                                               mock: str) -> None:
    litellm_calls()
    ledger = FakeLedger()

    findings = await run(ledger, ReviewConfig(model=MODEL, mock_response=mock))

    assert [(f.row_number, f.column, f.rule_id, f.severity) for f in findings] == [
        (None, None, "llm_review_unavailable", "warning")]
    [row] = ledger.rows
    assert (row.outcome, row.response_text) == ("malformed", None)
    assert row.cost_usd == pytest.approx(MOCK_COST)  # a useless answer is still paid for


@pytest.mark.parametrize("mock", ["litellm.InternalServerError", "litellm.RateLimitError"])
async def test_a_provider_error_is_a_warning_not_an_exception(litellm_calls: Callable[..., Calls],
                                                              mock: str) -> None:
    litellm_calls()
    ledger = FakeLedger()

    [finding] = await run(ledger, ReviewConfig(model=MODEL, mock_response=mock))

    assert (finding.row_number, finding.rule_id, finding.severity) == (None, "llm_review_unavailable", "warning")
    assert mock.removeprefix("litellm.") in finding.message
    assert "mock" not in finding.message  # the provider's text is not passed on
    [row] = ledger.rows
    assert (row.outcome, row.cost_usd, row.response_text) == ("error", 0.0, None)


async def test_a_model_without_provider_is_an_error_warning() -> None:
    ledger = FakeLedger()

    [finding] = await run(ledger, ReviewConfig(model="no-such-model", mock_response=answer()))

    assert finding.rule_id == "llm_review_unavailable" and "BadRequestError" in finding.message
    assert [r.outcome for r in ledger.rows] == ["error"]


async def test_litellm_timeout_is_a_warning(litellm_calls: Callable[..., Calls]) -> None:
    litellm_calls(mock_timeout=True)  # litellm sleeps `timeout` seconds, then raises litellm.Timeout
    ledger = FakeLedger()

    [finding] = await run(ledger, ReviewConfig(model=MODEL, timeout_s=0.05, mock_response=answer()))

    assert finding.rule_id == "llm_review_unavailable" and "0.05 s" in finding.message
    [row] = ledger.rows
    assert (row.outcome, row.cost_usd) == ("timeout", 0.0)


async def test_a_call_that_outlives_the_deadline_is_cut_off(litellm_calls: Callable[..., Calls]) -> None:
    litellm_calls(mock_delay=30)  # a hung provider; only our own deadline can end it
    ledger = FakeLedger()

    [finding] = await run(ledger, ReviewConfig(model=MODEL, timeout_s=0.05, mock_response=answer()))

    assert finding.rule_id == "llm_review_unavailable"
    [row] = ledger.rows
    assert row.outcome == "timeout" and row.latency_ms < 5000


async def test_an_exhausted_budget_means_no_call(litellm_calls: Callable[..., Calls]) -> None:
    calls = litellm_calls()
    ledger = FakeLedger(spent=0.05)

    [finding] = await run(ledger, ReviewConfig(model=MODEL, budget_usd=0.05, mock_response=answer()))

    assert calls.messages == []
    assert finding.rule_id == "llm_review_unavailable" and "budget" in finding.message
    [row] = ledger.rows
    assert (row.outcome, row.cost_usd, row.prompt_tokens, row.response_text) == ("over_budget", 0.0, 0, None)


async def test_the_budget_stops_calls_once_this_imports_spend_reaches_it(litellm_calls: Callable[..., Calls]) -> None:
    calls = litellm_calls()
    ledger = FakeLedger()
    config = ReviewConfig(model=MODEL, budget_usd=MOCK_COST / 2, mock_response=answer())

    assert await run(ledger, config) == []
    [warning] = await run(ledger, config, sample=SAMPLE[:1])  # a different request, same import

    assert warning.rule_id == "llm_review_unavailable"
    assert len(calls.messages) == 1
    assert [r.outcome for r in ledger.rows] == ["ok", "over_budget"]
    assert await run(ledger, config, import_id=uuid.UUID(int=4)) == []  # another import has its own budget


async def test_sensitive_data_is_never_sent(litellm_calls: Callable[..., Calls]) -> None:
    calls = litellm_calls()
    ledger = FakeLedger()

    findings = await run(ledger, ReviewConfig(model=MODEL, mock_response=answer()),
                         category=Category.SENSITIVE_DATA)

    assert findings == [] and calls.messages == [] and ledger.rows == []


async def test_off_without_a_model(litellm_calls: Callable[..., Calls]) -> None:
    calls = litellm_calls()
    ledger = FakeLedger()

    assert await run(ledger, ReviewConfig(model=None, mock_response=answer())) == []
    assert calls.messages == [] and ledger.rows == []


async def test_sensitive_columns_never_reach_the_prompt(litellm_calls: Callable[..., Calls]) -> None:
    calls = litellm_calls()

    await run(FakeLedger(), ReviewConfig(model=MODEL, mock_response=answer()))

    [messages] = calls.messages
    sent = json.dumps(messages)
    for leaked in (*SECRETS, "admin_password", "ownerEmail", "api_key"):
        assert leaked not in sent
    for kept in ("web-01", "Windows 95", "serial_number", "10.0.0.2"):
        assert kept in sent


@pytest.mark.parametrize("name", ["password", "Admin Password", "db_passwd", "client_secret", "auth_token",
                                  "apiKey", "ACCESS_KEY_ID", "key", "ssn", "Social Security Number",
                                  "credit_card", "CardNumber", "iban", "dob", "date_of_birth", "BirthDate",
                                  "email", "e-mail", "owner_email_address", "phone", "mobilePhone",
                                  "passport_no", "private_key"])
def test_sensitive_looking_names(name: str) -> None:
    assert is_sensitive_column(name)


@pytest.mark.parametrize("name", ["hostname", "ip_address", "os", "serial_number", "application_name",
                                  "classname", "monkey_patch_level", "environment", "owner", "cpu_cores",
                                  "business_criticality", "telemetry_agent", "description"])
def test_ordinary_names_are_kept(name: str) -> None:
    assert not is_sensitive_column(name)


def test_the_prompt_is_bounded() -> None:
    sample = [(n, {"hostname": "h" * 1000, "os": None}) for n in range(2, 100)]

    request = build_request(ReviewConfig(model=MODEL, sample_rows=5, max_cell_chars=50),
                            Category.INFRASTRUCTURE, ["hostname", "os", "password"], sample)

    assert request is not None
    assert request.columns == ("hostname", "os")
    assert request.row_numbers == frozenset(range(2, 7))
    payload = json.loads(request.messages[-1]["content"])
    assert [r["row_number"] for r in payload["rows"]] == [2, 3, 4, 5, 6]
    assert payload["rows"][0]["values"] == {"hostname": "h" * 49 + "…", "os": None}


def test_nothing_to_send_means_no_request() -> None:
    config = ReviewConfig(model=MODEL)
    assert build_request(config, Category.CMDB_EXPORT, ["password", "email"], SAMPLE) is None
    assert build_request(config, Category.CMDB_EXPORT, COLUMNS, []) is None
    assert build_request(config, Category.SENSITIVE_DATA, COLUMNS, SAMPLE) is None


def test_the_request_hash_is_stable_and_covers_model_and_prompt() -> None:
    config = ReviewConfig(model=MODEL)
    request = build_request(config, Category.CMDB_EXPORT, COLUMNS, SAMPLE)
    again = build_request(config, Category.CMDB_EXPORT, COLUMNS, [(n, dict(r)) for n, r in SAMPLE])
    other = build_request(config, Category.CMDB_EXPORT, COLUMNS, SAMPLE[:1])
    assert request is not None and again is not None and other is not None
    assert request.request_hash(MODEL) == again.request_hash(MODEL)
    assert request.request_hash(MODEL) != request.request_hash("gpt-4o")
    assert request.request_hash(MODEL) != other.request_hash(MODEL)


async def test_a_redelivered_import_reuses_the_stored_answer(litellm_calls: Callable[..., Calls]) -> None:
    calls = litellm_calls()
    ledger = FakeLedger()
    config = ReviewConfig(model=MODEL, mock_response=answer({"row_number": 2, "column": "os", "message": "old"}))

    first = await run(ledger, config)
    # Even if the model would now say something else, the stored answer is what counts.
    second = await run(ledger, replace(config, mock_response=answer()))

    assert first == second == [Finding(2, "os", "llm_review", "warning", "old", value=None)]
    assert len(calls.messages) == 1
    assert [r.outcome for r in ledger.rows] == ["ok"]
    assert await ledger.spent_usd(uuid.UUID(int=3)) == pytest.approx(MOCK_COST)


async def test_findings_are_capped(litellm_calls: Callable[..., Calls]) -> None:
    litellm_calls()
    many = answer(*({"row_number": 2, "column": "os", "message": f"m{i}" + "x" * 1000} for i in range(10)))

    findings = await run(FakeLedger(), ReviewConfig(model=MODEL, max_findings=3, mock_response=many))

    assert [f.message[:2] for f in findings] == ["m0", "m1", "m2"]
    assert all(len(f.message) <= 500 for f in findings)


async def test_an_unreadable_ledger_means_no_call(litellm_calls: Callable[..., Calls]) -> None:
    calls = litellm_calls()

    class Broken(FakeLedger):
        async def spent_usd(self, import_id: uuid.UUID) -> float:
            raise ConnectionError("database is down")

    ledger = Broken()
    [finding] = await run(ledger, ReviewConfig(model=MODEL, mock_response=answer()))

    assert finding.rule_id == "llm_review_unavailable" and calls.messages == []


async def test_an_unwritable_ledger_does_not_lose_the_findings(litellm_calls: Callable[..., Calls]) -> None:
    litellm_calls()

    class ReadOnly(FakeLedger):
        async def record(self, usage: LlmUsage) -> None:
            raise ConnectionError("database is down")

    findings = await run(ReadOnly(), ReviewConfig(
        model=MODEL, mock_response=answer({"row_number": 3, "column": "os", "message": "m"})))

    assert findings == [Finding(3, "os", "llm_review", "warning", "m", value=None)]

