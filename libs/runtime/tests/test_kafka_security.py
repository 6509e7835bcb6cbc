"""Broker connection settings (TLS, SASL) and topic creation settings, without a broker."""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from contracts import topics
from contracts.topic_config import topic_configs
from tributary_runtime.broker import kafka_client_options, make_admin, make_consumer, make_producer, new_topics
from tributary_runtime.settings import ServiceSettings

PASSWORD = "s3cr3t-Pa55word"
CA = Path(__import__("certifi").where())


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in __import__("os").environ if v.upper().startswith(("TRIBUTARY_", "KAFKA_"))]:
        monkeypatch.delenv(var)


def settings(**kw: Any) -> ServiceSettings:
    return ServiceSettings(kafka_bootstrap_servers="b1:9092,b2:9092", **kw)


@pytest.fixture(scope="module")
def client_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=client",
                    "-keyout", str(d / "client.key"), "-out", str(d / "client.pem")],
                   check=True, capture_output=True, timeout=60)
    return d / "client.pem", d / "client.key"


# --------------------------------------------------------------------------- options per protocol


def test_plaintext_is_the_default() -> None:
    assert kafka_client_options(settings()) == {"bootstrap_servers": "b1:9092,b2:9092",
                                                "security_protocol": "PLAINTEXT"}


def test_ssl_with_the_system_cas() -> None:
    options = kafka_client_options(settings(kafka_security_protocol="SSL"))
    assert set(options) == {"bootstrap_servers", "security_protocol", "ssl_context"}
    assert options["security_protocol"] == "SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0 or context.get_ca_certs() == []  # system store may be lazy


def test_ssl_with_a_ca_file_and_client_certificate(client_cert: tuple[Path, Path]) -> None:
    cert, key = client_cert
    options = kafka_client_options(settings(kafka_security_protocol="SSL", kafka_ssl_cafile=str(CA),
                                            kafka_ssl_certfile=str(cert), kafka_ssl_keyfile=str(key)))
    context = options["ssl_context"]
    assert context.cert_store_stats()["x509_ca"] > 0  # the CA file was loaded


def test_check_hostname_can_be_turned_off_but_the_chain_is_still_verified() -> None:
    context = kafka_client_options(settings(kafka_security_protocol="SSL", kafka_ssl_check_hostname=False,
                                            kafka_ssl_cafile=str(CA)))["ssl_context"]
    assert not context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_a_missing_tls_file_is_named() -> None:
    s = settings(kafka_security_protocol="SSL", kafka_ssl_cafile="/nonexistent/ca.pem")
    with pytest.raises(ValueError, match="TRIBUTARY_KAFKA_SSL_CAFILE: no file /nonexistent/ca.pem"):
        kafka_client_options(s)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
def test_sasl(protocol: str, mechanism: str) -> None:
    options = kafka_client_options(settings(kafka_security_protocol=protocol, kafka_sasl_mechanism=mechanism,
                                            kafka_sasl_username="api-key", kafka_sasl_password=PASSWORD))
    assert options["security_protocol"] == protocol
    assert options["sasl_mechanism"] == mechanism
    assert options["sasl_plain_username"] == "api-key"
    assert options["sasl_plain_password"] == PASSWORD
    assert ("ssl_context" in options) == (protocol == "SASL_SSL")


def test_environment_names_and_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "pkc-1.aws.confluent.cloud:9092")
    monkeypatch.setenv("TRIBUTARY_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("TRIBUTARY_KAFKA_SASL_MECHANISM", "scram-sha-512")
    monkeypatch.setenv("TRIBUTARY_KAFKA_SASL_USERNAME", "alice")
    monkeypatch.setenv("TRIBUTARY_KAFKA_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("TRIBUTARY_KAFKA_SSL_CAFILE", "")  # empty means unset
    s = ServiceSettings()
    assert (s.kafka_security_protocol, s.kafka_sasl_mechanism, s.kafka_ssl_cafile) == ("SASL_SSL", "SCRAM-SHA-512",
                                                                                       None)
    assert kafka_client_options(s)["bootstrap_servers"] == "pkc-1.aws.confluent.cloud:9092"


def test_every_client_kind_accepts_the_options(client_cert: tuple[Path, Path]) -> None:
    """The options are real keyword arguments of the producer, the consumer and the admin client."""
    cert, key = client_cert
    s = settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-256",
                 kafka_sasl_username="u", kafka_sasl_password=PASSWORD, kafka_ssl_certfile=str(cert),
                 kafka_ssl_keyfile=str(key))
    import asyncio

    async def build() -> None:
        producer, consumer = make_producer(s, "t"), make_consumer(s, "g", "t")
        assert isinstance(producer, AIOKafkaProducer) and isinstance(consumer, AIOKafkaConsumer)
        for client in (producer.client, consumer._client):
            assert client._security_protocol == "SASL_SSL" and client._sasl_mechanism == "SCRAM-SHA-256"
            assert client._ssl_context is not None
        admin = make_admin(s)
        assert isinstance(admin, AIOKafkaAdminClient) and admin._client._security_protocol == "SASL_SSL"
        await producer.stop()
        await consumer.stop()
        await admin.close()

    asyncio.run(build())


# --------------------------------------------------------------------------- invalid combinations


@pytest.mark.parametrize("missing", ["kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password"])
def test_sasl_needs_mechanism_and_credentials(missing: str) -> None:
    kw: dict[str, Any] = {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN",
                          "kafka_sasl_username": "u", "kafka_sasl_password": PASSWORD}
    del kw[missing]
    with pytest.raises(ValidationError, match=f"SASL_SSL needs TRIBUTARY_{missing.upper()}"):
        settings(**kw)


def test_credentials_without_a_sasl_protocol_are_rejected() -> None:
    with pytest.raises(ValidationError, match="SECURITY_PROTOCOL is PLAINTEXT: SASL needs SASL_SSL"):
        settings(kafka_sasl_mechanism="PLAIN", kafka_sasl_username="u", kafka_sasl_password=PASSWORD)
    with pytest.raises(ValidationError, match="SECURITY_PROTOCOL is SSL: SASL needs"):
        settings(kafka_security_protocol="SSL", kafka_sasl_username="u")


def test_tls_files_without_tls_are_rejected() -> None:
    with pytest.raises(ValidationError, match="TRIBUTARY_KAFKA_SSL_CAFILE set, but .* is SASL_PLAINTEXT"):
        settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN", kafka_sasl_username="u",
                 kafka_sasl_password=PASSWORD, kafka_ssl_cafile=str(CA))


def test_a_key_needs_its_certificate() -> None:
    with pytest.raises(ValidationError, match="SSL_KEYFILE needs TRIBUTARY_KAFKA_SSL_CERTFILE"):
        settings(kafka_security_protocol="SSL", kafka_ssl_keyfile="/k.pem")


@pytest.mark.parametrize("field,value", [("kafka_security_protocol", "TLS"),
                                         ("kafka_sasl_mechanism", "OAUTHBEARER"),
                                         ("kafka_sasl_mechanism", "AWS_MSK_IAM"),
                                         ("kafka_sasl_mechanism", "GSSAPI")])
def test_unsupported_protocols_and_mechanisms(field: str, value: str) -> None:
    kw: dict[str, Any] = {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN",
                          "kafka_sasl_username": "u", "kafka_sasl_password": PASSWORD, field: value}
    with pytest.raises(ValidationError, match=field):
        settings(**kw)


def test_min_insync_replicas_cannot_exceed_replication() -> None:
    with pytest.raises(ValidationError, match="MIN_INSYNC_REPLICAS=3 exceeds"):
        settings(topic_replication_factor=2, topic_min_insync_replicas=3)
    with pytest.raises(ValidationError):
        settings(topic_replication_factor=0)


# --------------------------------------------------------------------------- secrets stay secret


def test_the_password_is_not_in_repr_str_or_dumps() -> None:
    s = settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="PLAIN", kafka_sasl_username="u",
                 kafka_sasl_password=PASSWORD)
    for text in (repr(s), str(s), s.model_dump_json(), str(s.model_dump()), repr(s.kafka_sasl_password)):
        assert PASSWORD not in text


def test_the_password_is_not_in_validation_errors() -> None:
    with pytest.raises(ValidationError) as caught:
        settings(kafka_security_protocol="SASL_SSL", kafka_sasl_password=PASSWORD)  # no mechanism, no user
    assert PASSWORD not in str(caught.value) and PASSWORD not in repr(caught.value)


def test_the_password_is_not_logged_by_building_clients(caplog: pytest.LogCaptureFixture) -> None:
    s = settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="u",
                 kafka_sasl_password=PASSWORD, kafka_ssl_cafile=str(CA))
    import asyncio

    async def build() -> None:
        producer, consumer = make_producer(s, "t"), make_consumer(s, "g", "t")
        await producer.stop()
        await consumer.stop()

    with caplog.at_level(logging.DEBUG):
        asyncio.run(build())
        kafka_client_options(s)
    assert PASSWORD not in caplog.text


# --------------------------------------------------------------------------- topic creation


def test_new_topics_carry_the_topic_configs() -> None:
    s = settings(topic_partitions=12, topic_replication_factor=3)
    names = list(topics.ALL) + [topics.dlq(n) for n in topics.ALL]
    created = {t.name: t for t in new_topics(s, names)}
    wanted = {c.name: c for c in topic_configs()}
    assert set(created) == set(wanted)
    for name, topic in created.items():
        assert topic.num_partitions == 12 and topic.replication_factor == 3, name
        assert topic.topic_configs == wanted[name].configs(), name
        assert topic.topic_configs["retention.ms"] == "-1"
        assert topic.topic_configs["max.message.bytes"] == str(4 * 1024 * 1024)
    assert {n for n, t in created.items() if t.topic_configs["cleanup.policy"] == "compact"} == set(topics.COMPACTED)


def test_new_topics_defaults_and_min_insync() -> None:
    [events] = new_topics(settings(), [topics.EVENTS])
    assert events.replication_factor == 1 and events.num_partitions == 6
    assert "min.insync.replicas" not in events.topic_configs
    [events] = new_topics(settings(topic_replication_factor=3, topic_min_insync_replicas=2), [topics.EVENTS])
    assert events.topic_configs["min.insync.replicas"] == "2"
    assert topic_configs()[0].configs().get("min.insync.replicas") is None  # the shared dict is not changed


def test_an_unknown_topic_is_kept_forever_too() -> None:
    [other] = new_topics(settings(), ["bench.scratch.v1"])
    assert other.topic_configs == {"cleanup.policy": "delete", "retention.ms": "-1",
                                   "max.message.bytes": str(4 * 1024 * 1024)}


def test_create_topic_errors_other_than_already_exists_are_raised() -> None:
    from types import SimpleNamespace

    from aiokafka.errors import PolicyViolationError

    from tributary_runtime.broker import _raise_topic_errors

    _raise_topic_errors(SimpleNamespace(topic_errors=[("a", 0, None), ("b", 36, "exists")]))
    with pytest.raises(PolicyViolationError, match="could not create topic c: max.message.bytes too large"):
        _raise_topic_errors(SimpleNamespace(topic_errors=[("c", 44, "max.message.bytes too large")]))


def test_every_product_client_is_built_with_kafka_client_options() -> None:
    """No Kafka client in the product's code takes the bootstrap list alone (it would ignore TLS and SASL)."""
    root = Path(__file__).parents[3]
    # The dev command's liveness probe of the local PLAINTEXT broker it started itself.
    allowed = {root / "libs/cli/src/tributary_cli/devstack.py"}
    offenders = [str(p.relative_to(root)) for base in ("libs", "services") for p in (root / base).glob("*/src/**/*.py")
                 if p not in allowed and "bootstrap_servers=" in p.read_text()]
    assert not offenders, offenders
