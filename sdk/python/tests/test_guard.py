"""`guard()` against a real gateway: as a context manager, a decorator,
blocking and asyncio; every way an action is stopped runs nothing."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

import countersign
from countersign import Denied, GatewayUnavailable, StillPending


def test_routine_runs_at_once_and_reports(gateway):
    bot = gateway.client()
    ran = []
    with countersign.guard("shell.exec", "staging-web", {"argv": ["ls"]}, client=bot) as permit:
        ran.append(permit.id)
        permit.set_output("listing")
    assert ran == [permit.id] and not permit.waited
    # Reported in the background (the default): wait for it.
    assert bot.flush_outcomes(10) == 0
    outcome = bot.get(permit.id).outcome
    assert outcome["status"] == "succeeded"
    assert outcome["output_sha256"] == hashlib.sha256(b"listing").hexdigest()


def test_sensitive_call_waits_for_an_approver_and_runs_exactly_once(gateway, prod, approver):
    bot = gateway.client()
    ran = []
    pending = []
    a = approver(prod)

    @countersign.guard("payments.refund", prod, client=bot, justification="ticket 7", on_pending=pending.append)
    def refund(order: str, cents: int = 100) -> str:
        ran.append((order, cents))
        return "refunded"

    assert refund("o-1", cents=250) == "refunded"
    assert ran == [("o-1", 250)]
    assert len(pending) == 1 and pending[0].status == "pending"
    bot.flush_outcomes(10)
    view = bot.get(pending[0].id)
    assert view.status == "released" and view.outcome["status"] == "succeeded"
    # The approval bound to the exact call.
    assert view.payload["arguments"] == {"order": "o-1", "cents": 250}
    assert view.payload["function"].endswith("refund")
    assert a.join().status == "approved"
    # A second call is a new request: the approval was single use.
    b = approver(prod)
    refund("o-1", cents=250)
    assert len(ran) == 2 and b.join().id != a.join().id


def test_denied_by_policy_or_by_a_human_runs_nothing(gateway, prod, approver):
    bot = gateway.client()
    ran = []
    with pytest.raises(Denied) as e:
        with countersign.guard("shell.exec", "forbidden-db", {"x": 1}, client=bot):
            ran.append(1)
    assert "never-on-forbidden" in e.value.request.policies
    approver(prod, "deny", "not during the freeze")
    with pytest.raises(Denied) as e:
        with countersign.guard("shell.exec", prod, {"x": 2}, client=bot):
            ran.append(2)
    assert e.value.request.denials[0].comment == "not during the freeze"
    assert "not during the freeze" in e.value.request.describe()
    assert ran == []


def test_a_failure_in_the_body_is_reported_and_raised(gateway):
    bot = gateway.client()
    with pytest.raises(ZeroDivisionError):
        with countersign.guard("shell.exec", "staging-web", {"x": 3}, client=bot) as permit:
            1 / 0
    bot.flush_outcomes(10)
    outcome = bot.get(permit.id).outcome
    assert outcome["status"] == "failed" and "ZeroDivisionError" in outcome["summary"]


def test_own_timeout_cancels_the_request(gateway, prod):
    bot = gateway.client()
    with pytest.raises(StillPending) as e:
        with countersign.guard("shell.exec", prod, {"x": 4}, client=bot, timeout=1):
            pytest.fail("ran while pending")
    assert bot.get(e.value.id).status == "cancelled"


def test_gateway_down_fails_closed(down_url):
    ran = []

    @countersign.guard("shell.exec", "staging-web", client=countersign.Client(down_url, "t"))
    def work() -> None:
        ran.append(1)

    with pytest.raises(GatewayUnavailable):
        work()
    assert ran == []


def test_payload_that_is_not_json_is_refused_before_submitting(gateway):
    with pytest.raises(TypeError):
        with countersign.guard("shell.exec", "staging-web", {"f": object()}, client=gateway.client()):
            pytest.fail("ran")


def test_async_guard_and_decorator(gateway, prod, approver):
    async def scenario() -> None:
        bot = gateway.async_client()
        ran = []

        @countersign.guard("shell.exec", prod, client=bot)
        async def restart(service: str) -> str:
            ran.append(service)
            return "ok"

        a = approver(prod)
        assert await restart("web") == "ok"
        assert a.join().status == "approved"
        async with countersign.guard("shell.exec", "staging-y", {"z": 1}, client=bot) as permit:
            ran.append(permit.id)
        assert ran == ["web", permit.id]
        with pytest.raises(Denied):
            async with countersign.guard("shell.exec", "forbidden-z", {}, client=bot):
                ran.append("no")
        assert await bot.flush_outcomes(10) == 0
        assert (await bot.get(permit.id)).outcome["status"] == "succeeded"
        await bot.aclose()

    asyncio.run(scenario())


def test_a_cancelled_waiting_task_cancels_its_request(gateway, prod):
    async def scenario() -> str:
        bot = gateway.async_client()
        seen = []
        g = countersign.guard("shell.exec", prod, {"q": 1}, client=bot, on_pending=seen.append)
        task = asyncio.create_task(g.aclear())
        while not seen:
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        status = (await bot.get(seen[0].id)).status
        await bot.aclose()
        return status

    assert asyncio.run(scenario()) == "cancelled"


def test_an_awaited_report_is_recorded_before_the_block_ends(gateway):
    bot = gateway.client()
    with countersign.guard("shell.exec", "staging-aw", {"a": 1}, client=bot, background_report=False) as permit:
        pass
    assert permit.reported is not None and permit.reported.outcome["status"] == "succeeded"
    assert bot._outcomes is None, "no background sender was started"


def test_background_report_leaves_the_path_and_still_lands(gateway):
    async def scenario() -> str:
        bot = gateway.async_client()
        async with countersign.guard("shell.exec", "staging-bg", {"b": 1}, client=bot,
                                     background_report=True) as permit:
            pass
        await countersign.drain_reports()
        outcome = (await bot.get(permit.id)).outcome
        await bot.aclose()
        return outcome["status"]

    assert asyncio.run(scenario()) == "succeeded"


def test_no_payload_is_the_empty_object_and_still_runs_after_approval(gateway, prod, approver):
    bot = gateway.client()
    a = approver(prod)
    with countersign.guard("shell.exec", prod, client=bot) as permit:
        assert permit.waited
    assert a.join().status == "approved"
    assert bot.get(permit.id).payload == {}
