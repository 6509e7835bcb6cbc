"""``tributary purge-staged-rows``: which service modules it runs, with what, and its exit code.
The passes themselves run against the real database in the runtime's integration tests and the
end-to-end test; here the processes are stood in for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tributary_cli import main
from tributary_cli.main import app

ENV = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:9/none", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict[str, str]]]:
    """The processes started: argv and environment; the validator's pass fails."""
    started: list[tuple[list[str], dict[str, str]]] = []

    def run(argv: list[str], env: dict[str, str], **_: Any) -> subprocess.CompletedProcess[str]:
        started.append((argv, env))
        return subprocess.CompletedProcess(argv, 3 if argv[2] == "validator.purge" else 0)

    monkeypatch.setattr(subprocess, "run", run)
    return started


def test_each_service_runs_its_own_pass_even_when_one_fails_and_the_failure_is_the_exit_code(
        runs: list[tuple[list[str], dict[str, str]]]) -> None:
    result = CliRunner().invoke(app, ["purge-staged-rows", "--older-than-days", "0.5", "--json"], env=ENV)
    assert result.exit_code == 3
    assert [argv for argv, _ in runs] == [
        [sys.executable, "-m", "validator.purge", "--older-than-days", "0.5", "--json"],
        [sys.executable, "-m", "enricher.purge", "--older-than-days", "0.5", "--json"]]
    assert all(env["DATABASE_URL"] == ENV["DATABASE_URL"] for _, env in runs)


def test_one_service_and_the_services_own_retention_with_no_broker_configured(
        runs: list[tuple[list[str], dict[str, str]]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(main, "STATE_DIR", tmp_path)  # no dev stack's settings either
    only_database = {"DATABASE_URL": ENV["DATABASE_URL"], "KAFKA_BOOTSTRAP_SERVERS": ""}
    result = CliRunner().invoke(app, ["purge-staged-rows", "--service", "enricher"], env=only_database)
    assert result.exit_code == 0, result.output
    assert [argv for argv, _ in runs] == [[sys.executable, "-m", "enricher.purge"]]


def test_no_database_is_refused_before_anything_runs(runs: list[tuple[list[str], dict[str, str]]],
                                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(main, "STATE_DIR", tmp_path)
    result = CliRunner().invoke(app, ["purge-staged-rows"], env={"DATABASE_URL": "", "KAFKA_BOOTSTRAP_SERVERS": ""})
    assert result.exit_code != 0 and "No database configured" in result.output
    assert runs == []


def test_a_negative_age_or_another_service_is_refused_before_anything_runs(
        runs: list[tuple[list[str], dict[str, str]]]) -> None:
    assert CliRunner().invoke(app, ["purge-staged-rows", "--older-than-days", "-1"], env=ENV).exit_code != 0
    other = CliRunner().invoke(app, ["purge-staged-rows", "--service", "flow-state"], env=ENV)
    assert other.exit_code != 0 and "No staging service named flow-state" in other.output
    assert runs == []
