"""Errors of the ``tributary`` command: one sentence and a hint on stderr, never a traceback.

Commands raise :class:`CliError` (or let an ``httpx`` transport error, a missing stack
setting or a failed helper process escape); :class:`ErrorHandlingGroup`, the root command
group, turns every one of them into the same two lines and an exit status:
0 done, 1 the operation failed or was refused, 2 the command was used wrongly.
``TRIBUTARY_DEBUG=1`` lets unexpected exceptions through with their traceback.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import httpx
import typer
from rich.console import Console
from typer.core import TyperGroup

FAILED, USAGE = 1, 2

# Where each service's URL comes from, named in the hints (one way to configure: option or env var).
URL_SETTINGS = {
    "ingest": ("--ingest-url", "TRIBUTARY_INGEST_URL"),
    "validator": ("--validator-url", "TRIBUTARY_VALIDATOR_URL"),
    "enricher": ("--enricher-url", "TRIBUTARY_ENRICHER_URL"),
    "flow-state": ("--flow-url", "TRIBUTARY_FLOW_URL"),
}
KEY_HINT = "create a key with `tributary keys create` and set TRIBUTARY_API_KEY or --api-key"


@dataclass
class CliError(Exception):
    message: str
    hint: str | None = None
    exit_code: int = FAILED

    def __str__(self) -> str:
        return self.message

    def lines(self) -> list[str]:
        return [self.message] + ([f"hint: {self.hint}"] if self.hint else [])


def usage(message: str, hint: str | None = None) -> CliError:
    return CliError(message, hint, USAGE)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "?", "!")) else text + "."


def detail_of(response: httpx.Response) -> Any:
    """The ``detail`` of an error answer (a string, a list of field errors or an object), else its text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
    return body.get("detail", body) if isinstance(body, dict) else body


def describe(detail: Any) -> str:
    if isinstance(detail, list):  # request validation: name the field and what is wrong
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}"
                         if isinstance(d, dict) else str(d) for d in detail)
    if isinstance(detail, dict) and "message" in detail:
        return str(detail["message"])
    return str(detail)


def unreachable(service: str, url: str, exc: Exception | None = None) -> CliError:
    option, envvar = URL_SETTINGS.get(service, ("--url", "the URL setting"))
    why = "connection refused" if isinstance(exc, httpx.ConnectError) or exc is None else type(exc).__name__
    return CliError(f"Cannot reach {service} at {url} ({why}).",
                    f"start the stack (`tributary dev up`, then `tributary run`), or point {envvar} or "
                    f"{option} at the running service")


def rejection(detail: Any) -> CliError:
    """An upload the ingest refused (422/413): the server's code, message, row and column."""
    if not isinstance(detail, dict):
        return CliError(f"The upload was rejected: {_sentence(describe(detail))}", "fix the file and upload it again")
    where = ", ".join(f"{k} {detail[k]}" for k in ("row", "column") if detail.get(k) is not None)
    code = detail.get("code", "rejected")
    return CliError(f"The upload was rejected ({code}{', ' + where if where else ''}): "
                    f"{_sentence(str(detail.get('message', '')))}",
                    "fix the file and upload it again; nothing was imported")


def from_response(response: httpx.Response, service: str, *, not_found: str | None = None,
                  not_found_hint: str | None = None) -> CliError:
    """The error for a refused request: 401, 404, 409, 413/422 and anything else."""
    status, detail = response.status_code, detail_of(response)
    if status == 401:
        return CliError(f"Not allowed: {_sentence(describe(detail))}", KEY_HINT)
    if status == 404:
        return CliError(not_found or f"Not found ({service} answered 404): {_sentence(describe(detail))}",
                        not_found_hint)
    if status in (413, 422) and isinstance(detail, dict) and "code" in detail:
        return rejection(detail)
    return CliError(f"Refused ({status}): {_sentence(describe(detail))}")


def check(response: httpx.Response, service: str, **kw: Any) -> Any:
    """The JSON body of a successful answer; the mapped :class:`CliError` otherwise."""
    if response.status_code >= 400:
        raise from_response(response, service, **kw)
    return response.json()


def translate(exc: BaseException) -> CliError | None:
    """The :class:`CliError` for an exception a command let escape; None when it is unexpected."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, httpx.TransportError):
        # Commands name the service themselves (connection.Connection.call); this is the fallback.
        url = str(exc.request.url).split("/v1/")[0] if _has_request(exc) else "a service"
        return CliError(f"Cannot reach {url} ({type(exc).__name__}).",
                        "start the stack (`tributary dev up`, then `tributary run`), or check the "
                        "TRIBUTARY_*_URL settings")
    if isinstance(exc, subprocess.CalledProcessError):
        said = (exc.stderr or "").strip().splitlines() if isinstance(exc.stderr, str) else []
        return CliError(f"`{' '.join(str(a) for a in exc.cmd[1:4])}` failed (exit status {exc.returncode})"
                        + (f": {_sentence(said[-1])}" if said else "."),
                        "is the database reachable (DATABASE_URL, `tributary dev up`)?")
    refused = isinstance(exc, ConnectionError) and not isinstance(exc, BrokenPipeError)
    if refused or (isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED):
        return CliError(f"Cannot connect to the broker or database ({exc.strerror or exc}).",
                        "start them with `tributary dev up`, or check DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS")
    return None


def _has_request(exc: httpx.TransportError) -> bool:
    try:
        exc.request  # noqa: B018 - raises RuntimeError when the error carries no request
    except RuntimeError:
        return False
    return True


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (some carry a log tail after it)."""
    lines = str(exc).strip().splitlines()
    return _sentence(lines[0]) if lines else "no message."


stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def report(error: CliError) -> None:
    stderr.print(error.message, markup=False)
    if error.hint:
        stderr.print(f"hint: {error.hint}", markup=False, style="dim")


class ErrorHandlingGroup(TyperGroup):
    """The root group: every command's errors end here, so each one is handled the same way."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # exits, Ctrl-C and usage errors: typer's own
            raise
        except Exception as exc:  # noqa: BLE001 - the one place where errors become sentences
            error = translate(exc)
            if error is None:
                if os.environ.get("TRIBUTARY_DEBUG"):
                    raise
                error = CliError(f"Unexpected error: {type(exc).__name__}: {first_line(exc)}",
                                 "run again with TRIBUTARY_DEBUG=1 to see the traceback")
            report(error)
            sys.stdout.flush()
            raise typer.Exit(error.exit_code) from None
