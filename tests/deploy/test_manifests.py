"""deploy/k8s, deploy/kafka/create-topics.sh and the images agree with the code and with compose.

No cluster, broker or Docker needed: manifests are parsed; the topic script runs against a
stand-in for kafka-topics.sh that records its arguments; the services' FastAPI apps are
built (their resources stubbed) to read their routes.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import shlex
import subprocess
import tomllib
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from contracts.topic_config import MAX_MESSAGE_BYTES, topic_configs
from tributary_runtime.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
DOCKER = ROOT / "deploy" / "docker"
TOPIC_SCRIPT = ROOT / "deploy" / "kafka" / "create-topics.sh"

# k8s/compose name -> python package; everything else (settings class, port) is derived.
APPS = {"ingest": "ingest", "validator": "validator", "enricher": "enricher", "flow-state": "flow_state"}


# --------------------------------------------------------------------------- helpers


def settings_class(package: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"{package}.settings")
    found = [c for c in vars(module).values()
             if isinstance(c, type) and issubclass(c, ServiceSettings) and c is not ServiceSettings]
    assert len(found) == 1, f"{package}.settings should define one ServiceSettings subclass"
    return found[0]


def env_names(cls: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads (upper case)."""
    prefix = cls.model_config.get("env_prefix", "")
    names: set[str] = set()
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias
        if alias is None:
            names.add((prefix + field_name).upper())
        elif isinstance(alias, AliasChoices):
            names |= {c.upper() for c in alias.choices if isinstance(c, str)}
        else:
            names.add(str(alias).upper())
    return names


def port_of(package: str) -> int:
    return settings_class(package).model_fields["http_port"].default


# Parsed once per session (read-only from here on); libyaml's loader when PyYAML has it.
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def manifests(directory: Path) -> list[dict[str, Any]]:
    return [doc for path in sorted(directory.glob("*.yaml")) if path.name != "kustomization.yaml"
            for doc in yaml.load_all(path.read_text(), Loader=Loader) if doc]


def all_manifests() -> list[dict[str, Any]]:
    return manifests(K8S / "setup") + manifests(K8S / "apps")


def find(kind: str, name: str) -> dict[str, Any]:
    hits = [m for m in all_manifests() if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(hits) == 1, f"{kind}/{name}: {len(hits)} found"
    return hits[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def config_map() -> dict[str, str]:
    return find("ConfigMap", "tributary-config")["data"]


def secret_keys() -> set[str]:
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    return set(secret.get("stringData") or {}) | set(secret.get("data") or {})


def container_env(container: dict[str, Any]) -> dict[str, str | None]:
    """Every variable a container gets: envFrom (ConfigMap keys, Secret keys) and env."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] == "tributary-config"
            env |= config_map()
        if "secretRef" in source:
            assert source["secretRef"]["name"] == "tributary-db"
            env |= {k: None for k in secret_keys()}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["configMapKeyRef"]
            assert ref["name"] == "tributary-config" and ref["key"] in config_map()
            env[item["name"]] = config_map()[ref["key"]]
    return env


@cache
def compose() -> dict[str, Any]:
    return yaml.load((ROOT / "docker-compose.yml").read_text(), Loader=Loader)["services"]


def dockerfile(name: str) -> list[tuple[str, str]]:
    """Final-stage (INSTRUCTION, args) of deploy/docker/<name>.Dockerfile."""
    text = re.sub(r"\\\n", " ", (DOCKER / f"{name}.Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    instructions = [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]
    last_from = max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    return instructions[last_from:]


def image_name(image: str) -> str:
    return image.rsplit(":", 1)[0]


# --------------------------------------------------------------------------- k8s shape


def test_kustomizations_list_every_manifest() -> None:
    for directory in (K8S / "setup", K8S / "apps"):
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        files = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"}
        assert set(kustomization["resources"]) == files, directory
        assert kustomization["namespace"] == "tributary"
        images = {i["name"] for i in kustomization.get("images", [])}
        ours = {image_name(c["image"]) for m in manifests(directory) if m["kind"] in {"Deployment", "Job"}
                for c in pod_spec(m)["containers"] if c["image"].startswith("tributary/")}
        assert images == ours, f"{directory.name}: kustomize images {images} vs manifests {ours}"
    assert find("Namespace", "tributary")
    # The example secret is applied by hand (real credentials), never by kustomize.
    assert "secret.example.yaml" not in (K8S / "setup" / "kustomization.yaml").read_text()


@pytest.mark.parametrize("name", sorted(APPS))
def test_deployment_and_service(name: str) -> None:
    package, port = APPS[name], port_of(APPS[name])
    deployment = find("Deployment", f"tributary-{name}")
    service = find("Service", f"tributary-{name}")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    [container] = pod_spec(deployment)["containers"]
    assert image_name(container["image"]) == f"tributary/{name}"
    assert (DOCKER / f"{name}.Dockerfile").is_file()
    assert container["command"] == ["python", "-m", package, "serve"]
    assert (ROOT / "services" / name / "src" / package / "__main__.py").is_file()
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
    env = container_env(container)
    assert env["TRIBUTARY_HTTP_PORT"] == str(port)
    assert env["TRIBUTARY_HTTP_HOST"] == "0.0.0.0"
    assert {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"} <= set(env)
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    for resource in ("cpu", "memory"):
        assert container["resources"]["requests"][resource] and container["resources"]["limits"][resource]


@pytest.mark.parametrize("name", sorted(APPS))
def test_env_names_are_settings_fields(name: str) -> None:
    """Every variable given to a service is one its settings class reads (a typo would be ignored)."""
    known = env_names(settings_class(APPS[name]))
    [container] = pod_spec(find("Deployment", f"tributary-{name}"))["containers"]
    assert set(container_env(container)) <= known, set(container_env(container)) - known
    assert set(compose()[name]["environment"]) <= known, set(compose()[name]["environment"]) - known


@pytest.mark.parametrize("name", sorted(APPS))
def test_env_parses_into_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    [container] = pod_spec(find("Deployment", f"tributary-{name}"))["containers"]
    for var in list(os.environ):
        if var.upper().startswith("TRIBUTARY_") or var.upper() in {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"}:
            monkeypatch.delenv(var)
    for var, value in container_env(container).items():
        monkeypatch.setenv(var, value if value is not None else "postgresql://u:p@db:5432/tributary")
    settings = settings_class(APPS[name])()
    assert settings.http_port == port_of(APPS[name])
    assert settings.kafka_bootstrap_servers == config_map()["KAFKA_BOOTSTRAP_SERVERS"]
    assert settings.topic_partitions == int(config_map()["TRIBUTARY_TOPIC_PARTITIONS"])


def test_every_pod_runs_as_non_root() -> None:
    dockerfile_users = {f"tributary/{p.name.removesuffix('.Dockerfile')}":
                        [a for kw, a in dockerfile(p.name.removesuffix(".Dockerfile")) if kw == "USER"][-1]
                        for p in DOCKER.glob("*.Dockerfile")}
    workloads = [m for m in all_manifests() if m["kind"] in {"Deployment", "Job"}]
    assert len(workloads) == len(APPS) + 2
    for workload in workloads:
        pod = pod_spec(workload)
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] != 0, workload["metadata"]["name"]
        assert security["seccompProfile"]["type"] == "RuntimeDefault"
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["limits"] and container["resources"]["requests"]
            user = dockerfile_users.get(image_name(container["image"]))
            if user is not None:  # our images: the pod's uid is the image's USER
                assert f"{security['runAsUser']}:{security['runAsGroup']}" == user, workload["metadata"]["name"]
            if context.get("readOnlyRootFilesystem"):
                assert any(m["mountPath"] == "/tmp" for m in container.get("volumeMounts", [])), \
                    "a read-only root needs a writable /tmp (uploads, kafka tools' logs)"


def test_migrate_job() -> None:
    job = find("Job", "tributary-migrate")
    [container] = pod_spec(job)["containers"]
    assert container["command"] == ["tributary", "migrate"]
    assert image_name(container["image"]) == "tributary/migrate"
    assert [a for kw, a in dockerfile("migrate") if kw == "CMD"][-1] == '["tributary", "migrate"]'
    scripts = tomllib.loads((ROOT / "libs" / "cli" / "pyproject.toml").read_text())["project"]["scripts"]
    assert "tributary" in scripts
    # Migrations take no lock: one pod at a time.
    assert job["spec"].get("parallelism", 1) == 1 and pod_spec(job)["restartPolicy"] == "Never"
    env = container_env(container)
    assert {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"} <= set(env)  # `tributary migrate` requires both
    assert set(env) <= env_names(ServiceSettings)
    assert compose()["migrate"]["command"] == container["command"]


# --------------------------------------------------------------------------- images


@pytest.mark.parametrize("name", sorted(APPS))
def test_dockerfile_port_and_entry_point(name: str) -> None:
    package, port = APPS[name], port_of(APPS[name])
    final = dockerfile(name)
    assert [a for kw, a in final if kw == "EXPOSE"] == [str(port)]
    assert f"TRIBUTARY_HTTP_PORT={port}" in " ".join(a for kw, a in final if kw == "ENV")
    assert [a for kw, a in final if kw == "CMD"][-1] == f'["python", "-m", "{package}", "serve"]'
    assert "/health" in [a for kw, a in final if kw == "HEALTHCHECK"][-1]
    assert compose()[name]["command"] == ["python", "-m", package, "serve"]
    assert compose()[name]["environment"]["TRIBUTARY_HTTP_PORT"] == port


# --------------------------------------------------------------------------- routes


def _app_of(package: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The FastAPI app ``python -m <package> serve`` runs, built with its resources stubbed."""
    from tributary_runtime import service

    captured: dict[str, Any] = {}

    @asynccontextmanager
    async def no_resources(settings: Any, schema: str, client_id: str) -> Any:
        yield SimpleNamespace(settings=settings, db=SimpleNamespace(pool=None), producer=None)

    async def capture(settings: Any, app: Any, tasks: Any) -> None:
        captured["app"] = app

    async def nothing(res: Any) -> None:
        return None

    monkeypatch.setattr(service, "open_resources", no_resources)
    monkeypatch.setattr(service, "serve", capture)
    main = importlib.import_module(f"{package}.main")
    if hasattr(main, "announce_keys"):  # ingest's start hook talks to the database
        monkeypatch.setattr(main, "announce_keys", nothing)
    asyncio.run(main.serve(settings_class(package)()))
    return captured["app"]


@pytest.mark.parametrize("name", sorted(APPS))
def test_probe_paths_are_routes(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    # Asked rather than read from app.routes: FastAPI may keep included routers unexpanded.
    client = TestClient(_app_of(APPS[name], monkeypatch))
    [container] = pod_spec(find("Deployment", f"tributary-{name}"))["containers"]
    probes = {container[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe", "startupProbe")
              if p in container}
    compose_probe = set(re.findall(r"/[a-z]+(?=')", " ".join(compose()[name]["healthcheck"]["test"])))
    assert probes == {"/health", "/ready"} and compose_probe == {"/health"}
    assert client.get("/health").status_code == 200
    # Not ready here (nothing consumes, no key ring), but the route is there: 503, not 404.
    assert client.get("/ready").status_code == 503
    assert client.get("/no-such-probe").status_code == 404


# --------------------------------------------------------------------------- topics


def _run_topic_script(tmp_path: Path, **env: str) -> list[list[str]]:
    log = tmp_path / "calls"
    fake = tmp_path / "kafka-topics.sh"
    fake.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\t" "$a"; done >> {shlex.quote(str(log))}\n'
                    f'echo >> {shlex.quote(str(log))}\n')
    fake.chmod(0o755)
    run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KAFKA_TOPICS": str(fake), **env}
    subprocess.run(["/bin/sh", str(TOPIC_SCRIPT)], env=run_env, check=True, capture_output=True, timeout=30)
    return [line.rstrip("\t").split("\t") for line in log.read_text().splitlines()]


def _created(calls: list[list[str]]) -> dict[str, dict[str, Any]]:
    out = {}
    for call in calls:
        if "--create" not in call:
            continue
        opts: dict[str, Any] = {"config": {}}
        for flag, value in zip(call, call[1:], strict=False):
            if flag == "--config":
                key, _, val = value.partition("=")
                opts["config"][key] = val
            elif flag.startswith("--") and not value.startswith("--"):
                opts[flag[2:]] = value
        assert "--if-not-exists" in call
        out[opts["topic"]] = opts
    return out


def test_topic_script_creates_every_topic_as_configured(tmp_path: Path) -> None:
    created = _created(_run_topic_script(tmp_path, KAFKA_BOOTSTRAP_SERVERS="kafka:9092"))
    wanted = {c.name: c for c in topic_configs()}
    assert set(created) == set(wanted)
    for name, opts in created.items():
        assert opts["config"] == wanted[name].configs(), name
        assert opts["bootstrap-server"] == "kafka:9092"
        # Defaults: the services' own partition default, one replica.
        assert opts["partitions"] == str(ServiceSettings.model_fields["topic_partitions"].default)
        assert opts["replication-factor"] == "1"
    assert {n for n, o in created.items() if o["config"]["cleanup.policy"] == "compact"} == {
        "flows.status.v1", "access.api-keys.v1"}


def test_topic_script_production_settings(tmp_path: Path) -> None:
    job = find("Job", "tributary-topics")
    [container] = pod_spec(job)["containers"]
    env = {k: v for k, v in container_env(container).items() if v is not None}
    created = _created(_run_topic_script(tmp_path, **env))
    assert len(created) == len(topic_configs())
    for opts in created.values():
        assert opts["partitions"] == config_map()["TRIBUTARY_TOPIC_PARTITIONS"]
        assert opts["replication-factor"] == env["TOPIC_REPLICATION_FACTOR"] == "3"
        assert opts["config"]["min.insync.replicas"] == env["TOPIC_MIN_INSYNC_REPLICAS"]


def test_topic_script_needs_a_bootstrap_server(tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError):
        _run_topic_script(tmp_path)


def test_topic_jobs_run_the_same_script() -> None:
    script = TOPIC_SCRIPT.read_text()
    assert find("ConfigMap", "tributary-topics-script")["data"]["create-topics.sh"] == script, \
        "deploy/k8s/setup/config.yaml must hold a copy of deploy/kafka/create-topics.sh"
    [container] = pod_spec(find("Job", "tributary-topics"))["containers"]
    assert container["image"] == compose()["kafka"]["image"] == compose()["topics"]["image"]
    assert container["command"][-1] == "/scripts/create-topics.sh"
    read = set(re.findall(r"\$\{([A-Z_]+)", script))
    given = set(container_env(container)) | set(compose()["topics"]["environment"])
    assert given - {"LOG_DIR"} <= read, given - read
    assert f"MAX_MESSAGE_BYTES={MAX_MESSAGE_BYTES}" in script
    assert int(compose()["kafka"]["environment"]["KAFKA_MESSAGE_MAX_BYTES"]) >= MAX_MESSAGE_BYTES


# --------------------------------------------------------------------------- docs


def test_deployment_doc_matches_the_code() -> None:
    doc = (ROOT / "docs" / "deployment.md").read_text()
    known = set().union(*(env_names(settings_class(p)) for p in APPS.values()))
    named = set(re.findall(r"`(TRIBUTARY_[A-Z_]+)`", doc))
    script_vars = set(re.findall(r"\$\{([A-Z_]+)", TOPIC_SCRIPT.read_text()))
    assert named - known <= script_vars, f"not settings fields: {named - known - script_vars}"
    # Every settings field is in the environment table (the LLM ones as TRIBUTARY_LLM_*).
    missing = {n for n in known - named if n.startswith("TRIBUTARY_") and not n.startswith("TRIBUTARY_LLM_")
               and n not in {"TRIBUTARY_DATABASE_URL", "TRIBUTARY_KAFKA_BOOTSTRAP_SERVERS"}}
    assert not missing, f"settings fields missing from docs/deployment.md: {missing}"
    for name in set(re.findall(r"`(TOPIC_[A-Z_]+|KAFKA_TOPICS)`", doc)):
        assert name in script_vars, name
    # The topic table: one row per topic (DLQs as one row), with its key and cleanup.policy.
    rows = {cells[0].strip("` "): cells for line in doc.splitlines() if line.startswith("| `")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}
    for config in topic_configs():
        row = rows["<each topic above>.dlq"] if config.dead_letter_of else rows[config.name]
        assert config.cleanup_policy in row[2], config.name
        assert str(config.retention_ms) in row[3], config.name
        if not config.dead_letter_of:
            assert row[1] == config.key, config.name
    assert f"max.message.bytes={MAX_MESSAGE_BYTES}" in doc
    defaults = {f"`TRIBUTARY_{n.upper()}`": f.default for n, f in ServiceSettings.model_fields.items()}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in defaults and cells[0] not in {"`TRIBUTARY_HTTP_PORT`"}:
            default = defaults[cells[0]]
            assert cells[1].strip("`").lower() == ("unset" if default is None else str(default).lower()), cells
