"""An upload being checked when its request is cancelled (the process stopping) stops being read.

A large file's check runs in a thread, which cancellation cannot stop; the process would wait for it
before exiting. tests/e2e/test_graceful_shutdown.py shows the exit under SIGTERM."""

from __future__ import annotations

import asyncio
import io
import threading
import time

import pytest

from contracts import Category
from ingest.uploads import (
    CHECK_ON_LOOP_UP_TO_BYTES,
    Upload,
    UploadAbandoned,
    check_file,
    fingerprint,
    off_loop,
    run_check,
    stored_size,
)
from tributary_cli.testing import cmdb_file


def upload(rows: int) -> Upload:
    return Upload(io.BytesIO(cmdb_file("abandon", rows, 100)), "hosts.csv", "text/csv", Category.CMDB_EXPORT)


def test_a_check_told_to_abandon_stops_within_a_thousand_rows() -> None:
    told = threading.Event()
    told.set()
    with pytest.raises(UploadAbandoned):
        check_file(upload(5_000), told)
    with pytest.raises(UploadAbandoned):
        fingerprint(upload(5_000).stream, 10**9, told)
    # Not told: the whole file is checked.
    assert check_file(upload(5_000), threading.Event()) == ["hostname", "ip_address", "environment"]


async def test_cancelling_the_request_ends_the_thread() -> None:
    started, ended = threading.Event(), threading.Event()

    def endless_check(abandon: threading.Event) -> None:
        started.set()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if abandon.is_set():
                    raise UploadAbandoned
                time.sleep(0.001)
        finally:
            ended.set()

    request = asyncio.create_task(off_loop(endless_check))
    await asyncio.to_thread(started.wait, 5)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert await asyncio.to_thread(ended.wait, 2), "the check went on after its request was cancelled"


async def test_a_finished_check_returns_its_result() -> None:
    assert await off_loop(check_file, upload(2_000)) == ["hostname", "ip_address", "environment"]


async def test_a_small_file_is_checked_on_the_event_loop_and_a_large_one_in_a_thread() -> None:
    """A small file's check is over in a few ms: it is not worth a thread. A large one's is
    handed to a thread, where a cancelled request can abandon it."""
    ran_in: list[tuple[str, bool]] = []

    def check(stream: io.BytesIO, abandon: threading.Event | None) -> list[str]:
        ran_in.append((threading.current_thread().name, abandon is not None))
        return check_file(Upload(stream, "hosts.csv", "text/csv", Category.CMDB_EXPORT), abandon)

    small, large = upload(100).stream, upload(5_000).stream
    assert stored_size(small) <= CHECK_ON_LOOP_UP_TO_BYTES < stored_size(large)
    for stream in (small, large):
        assert await run_check(check, stored_size(stream), stream) == ["hostname", "ip_address", "environment"]
    assert ran_in[0] == (threading.current_thread().name, False)  # on the loop's thread
    assert ran_in[1][0] != threading.current_thread().name and ran_in[1][1]
    assert stored_size(large) == len(large.getvalue()) and large.tell() == 0
