"""FetchPacing: a short fetch wait while messages flow, the idle wait once none came for a while, the
dormant wait once none came for longer."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from tributary_runtime.broker import FetchPacing
from tributary_runtime.settings import ServiceSettings


def consumer_with_wait(ms: int) -> SimpleNamespace:
    return SimpleNamespace(_fetcher=SimpleNamespace(_fetch_max_wait_ms=ms))


async def test_idle_after_a_quiet_spell_busy_again_with_the_first_message() -> None:
    settings = ServiceSettings(fetch_max_wait_ms=5, fetch_idle_wait_ms=80)
    consumer = consumer_with_wait(5)
    pacing = FetchPacing(consumer, settings, idle_after_s=0.05)  # type: ignore[arg-type]
    pacing.observe(False)
    assert consumer._fetcher._fetch_max_wait_ms == 5  # not quiet for long enough yet
    await asyncio.sleep(0.06)
    pacing.observe(False)
    assert consumer._fetcher._fetch_max_wait_ms == 80
    pacing.observe(True)
    assert consumer._fetcher._fetch_max_wait_ms == 5
    pacing.observe(False)  # one empty fetch while busy changes nothing
    assert consumer._fetcher._fetch_max_wait_ms == 5


async def test_dormant_after_a_longer_quiet_spell_busy_again_with_the_first_message() -> None:
    settings = ServiceSettings(fetch_max_wait_ms=5, fetch_idle_wait_ms=50, fetch_dormant_wait_ms=250,
                               fetch_dormant_after_s=0.1)
    consumer = consumer_with_wait(5)
    pacing = FetchPacing(consumer, settings, idle_after_s=0.03)  # type: ignore[arg-type]
    await asyncio.sleep(0.04)
    pacing.observe(False)
    assert consumer._fetcher._fetch_max_wait_ms == 50
    await asyncio.sleep(0.07)
    pacing.observe(False)
    assert consumer._fetcher._fetch_max_wait_ms == 250 and pacing.idle
    pacing.observe(True)
    assert consumer._fetcher._fetch_max_wait_ms == 5 and not pacing.idle


async def test_a_reader_paced_from_the_idle_wait_goes_dormant_only() -> None:
    # The key ring and the dashboard's status reader: never faster than the idle wait.
    settings = ServiceSettings(fetch_max_wait_ms=5, fetch_idle_wait_ms=50, fetch_dormant_wait_ms=250,
                               fetch_dormant_after_s=0.05)
    consumer = consumer_with_wait(50)
    pacing = FetchPacing(consumer, settings, idle_after_s=0.01,  # type: ignore[arg-type]
                         busy_ms=settings.fetch_idle_wait_ms)
    pacing.observe(True)
    assert consumer._fetcher._fetch_max_wait_ms == 50
    await asyncio.sleep(0.06)
    pacing.observe(False)
    assert consumer._fetcher._fetch_max_wait_ms == 250


async def test_a_dormant_wait_below_the_idle_one_never_shortens_it() -> None:
    consumer = consumer_with_wait(5)
    pacing = FetchPacing(consumer, ServiceSettings(fetch_max_wait_ms=5, fetch_idle_wait_ms=80,  # type: ignore[arg-type]
                                                   fetch_dormant_wait_ms=20, fetch_dormant_after_s=0),
                         idle_after_s=0)
    pacing.observe(False)
    assert consumer._fetcher._fetch_max_wait_ms == 80


async def test_an_idle_wait_below_the_busy_one_never_shortens_it() -> None:
    consumer = consumer_with_wait(200)
    pacing = FetchPacing(consumer, ServiceSettings(fetch_max_wait_ms=200, fetch_idle_wait_ms=50),  # type: ignore[arg-type]
                         idle_after_s=0)
    pacing.observe(False)
    assert consumer._fetcher._fetch_max_wait_ms == 200


async def test_a_consumer_without_a_fetcher_yet_is_left_alone() -> None:
    pacing = FetchPacing(SimpleNamespace(), ServiceSettings(), idle_after_s=0)  # type: ignore[arg-type]
    pacing.observe(False)  # no AttributeError
    assert pacing.idle


def test_the_pinned_aiokafka_builds_each_fetch_from_the_attribute_pacing_sets() -> None:
    # A private attribute: an aiokafka upgrade that renames it must fail here, not pace nothing silently.
    import inspect

    from aiokafka.consumer.fetcher import Fetcher

    assert "self._fetch_max_wait_ms = fetch_max_wait_ms" in inspect.getsource(Fetcher.__init__)
    assert "self._fetch_max_wait_ms," in inspect.getsource(Fetcher._get_actions_per_node)
