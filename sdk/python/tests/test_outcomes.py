"""Background outcome reports of an `AsyncClient`: sent by a task on the
caller's event loop, and never lost when that loop ends first — cancelled
by `asyncio.run` before or while sending, or closed without a word — nor
when the gateway cannot be reached: the sender thread takes over, in
order, and a report cut off mid-send is not an error when it had landed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, List

import pytest

import countersign
from countersign import outcomes


def test_a_background_report_is_sent_on_the_loop_without_a_thread(gateway: Any) -> None:
    async def scenario() -> countersign.Permit:
        bot = gateway.async_client()
        permits: List[countersign.Permit] = []
        for n in range(5):
            async with countersign.guard("shell.exec", "staging-loop", {"n": n}, client=bot) as permit:
                permits.append(permit)
        assert await bot.flush_outcomes(10) == 0
        assert bot._outcomes is None, "no sender thread was started"
        for p in permits:
            assert p.reported is not None and p.reported.outcome["status"] == "succeeded"
        await bot.aclose()
        return permits[-1]

    permit = asyncio.run(scenario())
    assert gateway.client().get(permit.id).outcome["status"] == "succeeded"


@pytest.mark.parametrize("steps", [0, 1, 2, 5])
def test_a_report_the_loop_did_not_finish_is_sent_by_the_thread(
    gateway: Any, steps: int, caplog: pytest.LogCaptureFixture
) -> None:
    """`asyncio.run` ends right after the block: the report's task is
    cancelled before it ran (0 steps) or mid-send (1+ loop steps)."""
    bot = gateway.async_client()
    ids: List[str] = []

    async def scenario() -> None:
        for n in range(3):
            async with countersign.guard("shell.exec", "staging-end", {"n": n, "steps": steps}, client=bot) as permit:
                ids.append(permit.id)
        for _ in range(steps):
            await asyncio.sleep(0)

    with caplog.at_level(logging.WARNING, logger="countersign"):
        asyncio.run(scenario())
        assert bot.outcomes.flush(10) == 0
    assert bot.outcomes.undelivered == []
    assert "not recorded" not in caplog.text
    sync = gateway.client()
    assert [sync.get(i).outcome["status"] for i in ids] == ["succeeded"] * 3
    bot.outcomes.close()


def test_a_report_left_on_a_closed_loop_is_sent_by_the_thread(gateway: Any) -> None:
    bot = gateway.async_client()
    ids: List[str] = []

    async def scenario() -> None:
        async with countersign.guard("shell.exec", "staging-dropped", {"d": 1}, client=bot) as permit:
            ids.append(permit.id)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(scenario())
    loop.close()  # its report's task never ran, and is not cancelled either
    assert countersign.flush_reports(10) == 0
    assert gateway.client().get(ids[0]).outcome["status"] == "succeeded"
    bot.outcomes.close()


def test_an_unreachable_gateway_hands_the_loops_reports_to_the_thread(
    down_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(outcomes, "RETRY_FOR", 0.3)

    async def scenario() -> List[str]:
        client = countersign.AsyncClient(down_url, "t")
        client.report_outcome_later("first", "succeeded")
        client.report_outcome_later("second", "failed")
        assert await client.flush_outcomes(10) == 0
        given_up = [r.id for r in client.outcomes.undelivered]
        await client.aclose()
        return given_up

    with caplog.at_level(logging.ERROR, logger="countersign"):
        assert asyncio.run(scenario()) == ["first", "second"]
    assert "the outcome of request first was not recorded" in caplog.text
