"""Ports for the stack's servers are picked where no outgoing connection can take them first."""

from __future__ import annotations

import socket

import pytest

from tributary_cli import devstack


def test_ports_are_below_the_ephemeral_range_distinct_and_free() -> None:
    low = devstack._ephemeral_low()  # noqa: SLF001
    ports = [devstack.free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(low - devstack._BELOW_EPHEMERAL <= p < low for p in ports)  # noqa: SLF001
    for port in ports[:5]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((devstack.HOST, port))


def test_a_port_something_listens_on_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((devstack.HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        # A range of one port, that one: the fallback asks the kernel instead.
        monkeypatch.setattr(devstack, "_ephemeral_low", lambda: port + 1)
        monkeypatch.setattr(devstack, "_BELOW_EPHEMERAL", 1)
        assert devstack.free_port() != port
