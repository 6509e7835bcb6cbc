"""Every command's errors: one sentence and a hint on stderr, the right exit status, no traceback.

The mapping is tested on fake answers; the handler through the real typer app (CliRunner),
against ports where nothing listens."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tributary_cli import errors
from tributary_cli.errors import CliError
from tributary_cli.main import app

KEY_HINT = "hint: create a key with `tributary keys create` and set TRIBUTARY_API_KEY or --api-key"


def answer(status: int, detail: object) -> httpx.Response:
    return httpx.Response(status, json={"detail": detail})


@pytest.mark.parametrize(("response", "lines"), [
    pytest.param(answer(401, "the API key is not valid (unknown, revoked or mistyped)"),
                 ["Not allowed: the API key is not valid (unknown, revoked or mistyped).", KEY_HINT], id="401"),
    pytest.param(answer(404, "asset not found"), ["Not found (enricher answered 404): asset not found."], id="404"),
    pytest.param(answer(409, "the flow is already paused"), ["Refused (409): the flow is already paused."],
                 id="409"),
    pytest.param(answer(422, {"code": "row_width", "message": "Row 3 has 5 cells but the header has only 4 columns.",
                              "row": 3, "column": None}),
                 ["The upload was rejected (row_width, row 3): Row 3 has 5 cells but the header has only 4 columns.",
                  "hint: fix the file and upload it again; nothing was imported"], id="422-upload"),
    pytest.param(answer(413, {"code": "too_large", "message": "The file is larger than the limit of 10 bytes."}),
                 ["The upload was rejected (too_large): The file is larger than the limit of 10 bytes.",
                  "hint: fix the file and upload it again; nothing was imported"], id="413-upload"),
    pytest.param(answer(422, [{"loc": ["query", "page_size"], "msg": "Input should be less than or equal to 500"}]),
                 ["Refused (422): page_size: Input should be less than or equal to 500."], id="422-request"),
    pytest.param(httpx.Response(502, text="Bad Gateway"), ["Refused (502): Bad Gateway."], id="not-json"),
])
def test_refusals_map_to_one_sentence(response: httpx.Response, lines: list[str]) -> None:
    assert errors.from_response(response, "enricher").lines() == lines


def test_a_404_names_the_missing_thing_when_the_command_knows_it() -> None:
    error = errors.from_response(answer(404, "flow not found"), "flow-state", not_found="Flow x not found.",
                                 not_found_hint="`tributary flows list` shows the flows of this tenant")
    assert error.lines() == ["Flow x not found.", "hint: `tributary flows list` shows the flows of this tenant"]


def test_exceptions_a_command_lets_escape_are_translated() -> None:
    refused = httpx.ConnectError("refused", request=httpx.Request("GET", "http://127.0.0.1:9/v1/assets"))
    assert errors.translate(refused).lines()[0] == "Cannot reach http://127.0.0.1:9 (ConnectError)."  # type: ignore[union-attr]
    failed = subprocess.CalledProcessError(1, ["python", "-m", "ingest", "keys", "create"],
                                           stderr="Traceback ...\nasyncpg.InvalidCatalogNameError: no such database\n")
    assert errors.translate(failed).lines() == [  # type: ignore[union-attr]
        "`-m ingest keys` failed (exit status 1): asyncpg.InvalidCatalogNameError: no such database.",
        "hint: is the database reachable (DATABASE_URL, `tributary dev up`)?"]
    assert errors.translate(ConnectionRefusedError(111, "Connection refused")).message == (  # type: ignore[union-attr]
        "Cannot connect to the broker or database (Connection refused).")
    assert errors.translate(BrokenPipeError(32, "Broken pipe")) is None
    assert errors.translate(KeyError("x")) is None


# ------------------------------------------------------------------------------------ through the app


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("TRIBUTARY_API_KEY", "TRIBUTARY_DEBUG", "TRIBUTARY_INGEST_URL", "TRIBUTARY_VALIDATOR_URL",
                 "TRIBUTARY_ENRICHER_URL", "TRIBUTARY_FLOW_URL", "DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def run(cli: CliRunner, *args: str, env: dict[str, str] | None = None) -> tuple[int, list[str], str]:
    result = cli.invoke(app, list(args), env=env)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stderr.splitlines(), result.stdout


def test_import_of_a_missing_file_is_a_usage_error(cli: CliRunner, tmp_path: Path) -> None:
    code, lines, _ = run(cli, "import", str(tmp_path / "nope.csv"), "--category", "cmdb_export")
    assert (code, lines) == (2, [f"File '{tmp_path / 'nope.csv'}' not found.",
                                 "hint: check the path (relative paths start in the current directory)"])


def test_import_of_an_unknown_category_lists_the_valid_ones(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "hosts.csv"
    path.write_text("hostname\nweb-1\n")
    code, lines, _ = run(cli, "import", str(path), "--category", "mainframes")
    assert (code, lines) == (2, ["Unknown category 'mainframes': use one of cmdb_export, app_discovery, "
                                 "infrastructure, sensitive_data."])


def test_import_to_a_service_that_is_not_running(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "hosts.csv"
    path.write_text("hostname\nweb-1\n")
    url = closed_port()
    code, lines, out = run(cli, "import", str(path), "--category", "cmdb_export", env={"TRIBUTARY_INGEST_URL": url})
    assert (code, lines) == (1, [f"Cannot reach ingest at {url} (connection refused).",
                                 "hint: start the stack (`tributary dev up`, then `tributary run`), or point "
                                 "TRIBUTARY_INGEST_URL or --ingest-url at the running service"])
    assert out == "upload: started (hosts.csv, 15 bytes, cmdb_export)\n"


@pytest.mark.parametrize(("args", "service", "setting"), [
    (["assets", "list", "--enricher-url", "{url}"], "enricher", "TRIBUTARY_ENRICHER_URL or --enricher-url"),
    (["assets", "show", "33333333-3333-4333-8333-333333333333", "--enricher-url", "{url}"], "enricher",
     "TRIBUTARY_ENRICHER_URL or --enricher-url"),
    (["flows", "--flow-url", "{url}", "list"], "flow-state", "TRIBUTARY_FLOW_URL or --flow-url"),
])
def test_every_http_command_names_the_unreachable_service_the_same_way(cli: CliRunner, args: list[str],
                                                                       service: str, setting: str) -> None:
    url = closed_port()
    code, lines, _ = run(cli, *(a.format(url=url) for a in args))
    assert (code, lines) == (1, [f"Cannot reach {service} at {url} (connection refused).",
                                 f"hint: start the stack (`tributary dev up`, then `tributary run`), or point "
                                 f"{setting} at the running service"])


@pytest.mark.parametrize("args", [["assets", "show", "web-01"], ["flows", "show", "web-01"],
                                  ["assets", "list", "--import-id", "web-01"]])
def test_an_id_that_is_no_uuid_is_a_usage_error(cli: CliRunner, args: list[str]) -> None:
    code, lines, _ = run(cli, *args)
    assert code == 2 and lines[0].startswith("'web-01' is not ")


def test_stack_commands_without_a_stack_say_how_to_start_one(cli: CliRunner, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tributary_cli.main.STATE_DIR", tmp_path)
    code, lines, _ = run(cli, "keys", "create", "--client-account-id", "00000000-0000-4000-8000-000000000001",
                         "--engagement-id", "00000000-0000-4000-8000-000000000002")
    assert (code, lines) == (2, ["No broker or database configured.",
                                 "hint: run `tributary dev up` first, or set DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS"])


def test_an_unexpected_error_is_one_line_unless_debugging(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise KeyError("phase_state")

    monkeypatch.setattr("tributary_cli.main.processes.migrate", boom)
    code, lines, _ = run(cli, "migrate", env={"DATABASE_URL": "postgresql://x/y", "KAFKA_BOOTSTRAP_SERVERS": "b:9"})
    assert (code, lines) == (1, ["Unexpected error: KeyError: 'phase_state'.",
                                 "hint: run again with TRIBUTARY_DEBUG=1 to see the traceback"])
    result = cli.invoke(app, ["migrate"], env={"DATABASE_URL": "postgresql://x/y", "KAFKA_BOOTSTRAP_SERVERS": "b:9",
                                               "TRIBUTARY_DEBUG": "1"})
    assert isinstance(result.exception, KeyError)


def test_cli_error_is_raised_with_its_exit_status() -> None:
    assert errors.usage("bad").exit_code == 2 and CliError("failed").exit_code == 1


def test_an_error_carrying_a_log_tail_is_shown_by_its_first_line(cli: CliRunner,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(*args: object, **kwargs: object) -> None:
        raise RuntimeError("tansu did not become ready on 127.0.0.1:9092: refused\n--- tansu.log ---\npanic: …")

    monkeypatch.setattr("tributary_cli.main.devstack.up", fails)
    code, lines, _ = run(cli, "dev", "up")
    assert (code, lines) == (1, ["Could not start the local broker or database: tansu did not become ready on "
                                 "127.0.0.1:9092: refused.",
                                 "hint: run again with TRIBUTARY_DEBUG=1 for the full output; `tributary dev down` "
                                 "stops what did start"])
