"""docker-compose.yml and deploy/docker/*.Dockerfile agree with the code.

(deploy/k8s and the topic script: test_manifests.py.)

No Docker needed: the files are parsed and checked against the repository (command
modules, settings fields, Dockerfiles, package directories).
"""

from __future__ import annotations

import importlib
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

import yaml  # noqa: E402  (locked dev dependency)

from pydantic import AliasChoices  # noqa: E402
from tributary_runtime.settings import ServiceSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKER_DIR = ROOT / "deploy" / "docker"

APP_SERVICES = {  # compose service -> (package, HTTP port)
    "ingest": ("ingest", 8001),
    "validator": ("validator", 8002),
    "enricher": ("enricher", 8003),
    "flow-state": ("flow_state", 8004),
}
PUBLISHED = {"ingest": 8001, "flow-state": 8004}
CONVENTIONAL_VARS = {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"}


# --------------------------------------------------------------------------- helpers


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _services() -> dict[str, dict[str, Any]]:
    return _compose()["services"]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _interpolate_defaults(value: str) -> str:
    """Resolve compose's ${VAR:-default} / ${VAR-default} to the default."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", value)


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    return command.split() if isinstance(command, str) else list(command or [])


def _one_shot(services: dict[str, dict[str, Any]]) -> set[str]:
    """Services another one waits for with condition service_completed_successfully."""
    names = set()
    for svc in services.values():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, dict):
            names |= {n for n, d in deps.items() if (d or {}).get("condition") == "service_completed_successfully"}
    return names


def _depends(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def settings_env_names(cls: type[ServiceSettings] = ServiceSettings) -> set[str]:
    """Environment variable names a settings class reads (upper case; it is case-insensitive)."""
    prefix = cls.model_config.get("env_prefix", "")
    names: set[str] = set()
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias
        if alias is None:
            names.add((prefix + field_name).upper())
        elif isinstance(alias, AliasChoices):
            names |= {choice.upper() for choice in alias.choices if isinstance(choice, str)}
        elif isinstance(alias, str):
            names.add(alias.upper())
    return names


def _is_settings_var(name: str) -> bool:
    return name.upper().startswith("TRIBUTARY_") or name.upper() in CONVENTIONAL_VARS


def _dockerfile_path(service: dict[str, Any]) -> Path | None:
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        return ROOT / build / "Dockerfile"
    return ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def _final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    instructions = _instructions(dockerfile)
    starts = [i for i, (kw, _) in enumerate(instructions) if kw == "FROM"]
    assert starts, f"{dockerfile} has no FROM"
    return instructions[starts[-1]:]


def _all_dockerfiles() -> list[Path]:
    return sorted(DOCKER_DIR.glob("*.Dockerfile"))


# --------------------------------------------------------------------------- compose


def test_compose_services() -> None:
    services = _services()
    assert {"kafka", "postgres", "migrate", *APP_SERVICES} <= set(services)
    assert services["kafka"]["image"] == "apache/kafka:3.9.0"
    assert "broker" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert _command(services["migrate"]) == ["tributary", "migrate"]


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_command_module_exists(name: str) -> None:
    package, _port = APP_SERVICES[name]
    command = _command(_services()[name])
    assert command == ["python", "-m", package, "serve"], command
    main = ROOT / "services" / name / "src" / package / "__main__.py"
    assert main.is_file(), f"{name}: `python -m {package}` needs {main.relative_to(ROOT)}"


def test_settings_env_names_helper() -> None:
    names = settings_env_names()
    assert {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "TRIBUTARY_HTTP_PORT", "TRIBUTARY_LOG_LEVEL"} <= names
    assert "TRIBUTARY_NO_SUCH_SETTING" not in names
    # Fields with an alias are read under their alias choices only, not as prefix + name.
    assert "TRIBUTARY_DATABASE_URL" in names and "DATABASE" not in names


def _service_settings(svc_name: str) -> type[ServiceSettings]:
    """The service's own settings class (its extra fields, e.g. flow-state's ingest_url), else the shared one."""
    if svc_name not in APP_SERVICES:
        return ServiceSettings
    module = importlib.import_module(f"{APP_SERVICES[svc_name][0]}.settings")
    found = [c for c in vars(module).values()
             if isinstance(c, type) and issubclass(c, ServiceSettings) and c is not ServiceSettings]
    return found[0] if found else ServiceSettings


def test_compose_env_vars_are_settings_fields() -> None:
    unknown = {
        f"{svc_name}: {var}"
        for svc_name, svc in _services().items()
        for var in _environment(svc)
        if _is_settings_var(var) and var.upper() not in settings_env_names(_service_settings(svc_name))
    }
    assert not unknown, f"not fields of ServiceSettings: {sorted(unknown)}"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_env_parses_into_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _environment(_services()[name])
    for var in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "TRIBUTARY_HTTP_HOST", "TRIBUTARY_HTTP_PORT"):
        assert var in env, f"{name} lacks {var}"
    for var in list(os.environ):
        if _is_settings_var(var):
            monkeypatch.delenv(var)
    for var, value in env.items():
        monkeypatch.setenv(var, _interpolate_defaults(value))
    settings = ServiceSettings()
    assert settings.http_port == APP_SERVICES[name][1]
    assert settings.http_host == "0.0.0.0"
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.database_url.startswith("postgresql://") and "@postgres:5432/" in settings.database_url


def test_dependencies() -> None:
    services = _services()
    assert _depends(services["migrate"]) == {"postgres": "service_healthy"}
    assert _depends(services["topics"]) == {"kafka": "service_healthy"}
    for name in APP_SERVICES:
        assert _depends(services[name]).get("migrate") == "service_completed_successfully", name
        assert _depends(services[name]).get("topics") == "service_completed_successfully", name
    assert _one_shot(services) == {"migrate", "topics"}


def test_topics_job() -> None:
    topics_job = _services()["topics"]
    assert topics_job["image"] == _services()["kafka"]["image"]
    script = topics_job["entrypoint"][-1]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in topics_job["volumes"]}
    assert (ROOT / mounts[script]).resolve() == ROOT / "deploy" / "kafka" / "create-topics.sh"
    env = _environment(topics_job)
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    # The same partition count as the services would use when creating a topic themselves.
    assert env["TRIBUTARY_TOPIC_PARTITIONS"] == _environment(_services()["ingest"])["TRIBUTARY_TOPIC_PARTITIONS"]
    assert env["TOPIC_REPLICATION_FACTOR"] == "1"  # one broker


def test_healthchecks() -> None:
    services = _services()
    for name, svc in services.items():
        if name in _one_shot(services):
            continue
        check = svc.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
    assert "pg_isready" in str(services["postgres"]["healthcheck"]["test"])
    for name, (_pkg, port) in APP_SERVICES.items():
        test = " ".join(services[name]["healthcheck"]["test"])
        assert f":{port}/health" in test, f"{name} healthcheck does not probe its /health on {port}"


def test_published_ports() -> None:
    services = _services()
    published = {
        name: {str(p).split(":")[-2] if str(p).count(":") else str(p) for p in svc.get("ports") or []}
        for name, svc in services.items()
        if svc.get("ports")
    }
    assert published == {name: {str(port)} for name, port in PUBLISHED.items()}
    for name, port in PUBLISHED.items():
        assert f"{port}:{port}" in [str(p) for p in services[name]["ports"]]


# --------------------------------------------------------------------------- Dockerfiles


def test_compose_dockerfiles_exist() -> None:
    services = _services()
    for name in ("migrate", *APP_SERVICES):
        path = _dockerfile_path(services[name])
        assert path is not None, f"{name} has no build section"
        assert path.is_file(), f"{name}: {path} missing"
        assert path.parent == DOCKER_DIR and path.name == f"{name}.Dockerfile"
        assert (services[name].get("build") or {}).get("context", ".") == "."


def test_every_dockerfile_is_referenced() -> None:
    referenced = {_dockerfile_path(svc) for svc in _services().values()} - {None}
    assert set(_all_dockerfiles()) == referenced


@pytest.mark.parametrize("dockerfile", _all_dockerfiles(), ids=lambda p: p.name)
def test_dockerfile_runs_as_non_root(dockerfile: Path) -> None:
    users = [args for kw, args in _final_stage(dockerfile) if kw == "USER"]
    assert users, f"{dockerfile.name} has no USER in its final stage"
    user = users[-1].split(":")[0].strip()
    assert user not in {"root", "0", ""}, f"{dockerfile.name} runs as {users[-1]}"
    assert user in {"tributary", "10001"}


@pytest.mark.parametrize("dockerfile", _all_dockerfiles(), ids=lambda p: p.name)
def test_dockerfile_build_shape(dockerfile: Path) -> None:
    instructions = _instructions(dockerfile)
    froms = [args for kw, args in instructions if kw == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    runs = [args for kw, args in instructions if kw == "RUN"]
    assert any("pip install --require-hashes -r requirements.lock" in run for run in runs)
    # Our packages go in without dependencies: everything third-party comes from the lock.
    installs = [m for run in runs for m in re.findall(r"pip install --no-deps ([^;&|]*)", run)]
    assert len(installs) == 1, "expected one `pip install --no-deps` of the repository packages"
    dirs = {arg.removeprefix("./").rstrip("/") for arg in installs[0].split() if not arg.startswith(("-", "$"))}
    assert {"contracts", "libs/runtime", "libs/cli"} <= dirs
    service = dockerfile.name.removesuffix(".Dockerfile")
    if service in APP_SERVICES:
        assert f"services/{service}" in dirs
        healthchecks = [args for kw, args in _final_stage(dockerfile) if kw == "HEALTHCHECK"]
        assert healthchecks and "NONE" not in healthchecks[-1].upper()
        assert "/health" in healthchecks[-1] and "urllib" in healthchecks[-1]
        cmd = [args for kw, args in _final_stage(dockerfile) if kw == "CMD"][-1]
        assert f'"-m", "{APP_SERVICES[service][0]}", "serve"' in cmd
    for package_dir in dirs:
        assert (ROOT / package_dir / "pyproject.toml").is_file(), f"{dockerfile.name}: {package_dir} is no package"


def test_migrate_command_is_a_console_script() -> None:
    scripts: dict[str, str] = {}
    for pyproject in [ROOT / "pyproject.toml", *ROOT.glob("libs/*/pyproject.toml"),
                      *ROOT.glob("services/*/pyproject.toml"), ROOT / "contracts" / "pyproject.toml"]:
        if pyproject.is_file():
            scripts |= tomllib.loads(pyproject.read_text()).get("project", {}).get("scripts", {})
    assert "tributary" in scripts, "`tributary migrate` needs a `tributary` console script"


def test_dockerignore() -> None:
    lines = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    for pattern in (".venv", ".git", ".tributary", "**/__pycache__", "bench/results"):
        assert pattern in lines, pattern
