"""Marking an import failed when one of its messages is dead-lettered."""

from __future__ import annotations

from contracts import ErrorInfo, ImportFailed, Phase, topics

from .consumer import DeadLetterHook, Inbound, Unit


def fail_import_on_dead_letter(phase: Phase, producer_name: str) -> DeadLetterHook:
    async def hook(unit: Unit, inbound: Inbound, reason: str) -> None:
        failed = ImportFailed(phase=phase, error=ErrorInfo(
            code="dead_lettered", reason=reason,
            details={"topic": inbound.topic, "partition": inbound.partition, "offset": inbound.offset,
                     "event_type": inbound.envelope.event_type}))
        stage = f"dlq:{inbound.topic}:{inbound.partition}:{inbound.offset}"
        await unit.publish(topics.EVENTS, inbound.envelope.follow(failed, producer=producer_name, stage_key=stage))

    return hook
