"""The typed client against a real gateway: every move of a request, the
error codes, the pushed wait, and refusals of hostile input."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import countersign
from countersign import ApiError, GatewayUnavailable


def test_routine_submit_is_allowed_and_takes_an_outcome(gateway):
    bot = gateway.client()
    submitted = bot.submit("shell.exec", "staging-web", {"argv": ["echo", "hi"]}, justification="smoke")
    assert submitted.status == "allowed"
    assert submitted.fingerprint.startswith("sha256:")
    assert submitted.policies == ["routine"]
    done = bot.report_outcome(submitted.id, "succeeded", exit_code=0, summary="hi")
    assert done.outcome and done.outcome["status"] == "succeeded"
    with pytest.raises(ApiError) as e:
        bot.report_outcome(submitted.id, "succeeded")
    assert (e.value.status, e.value.code) == (409, "outcome_already_reported")


def test_pending_wait_is_pushed_and_release_is_single_use(gateway, prod):
    bot, alice = gateway.client(), gateway.client("alice")
    submitted = bot.submit("shell.exec", prod, {"argv": ["restart"]})
    assert submitted.status == "pending"
    assert submitted.requirements[0].groups == ["sre"]
    assert submitted.expires_at
    timer = threading.Timer(0.5, lambda: alice.approve(submitted.id, "go"))
    timer.start()
    started = time.monotonic()
    decided = bot.wait(submitted.id)
    # Answered when the vote landed, not at the end of a 30 s poll.
    assert time.monotonic() - started < 10
    assert decided.status == "approved"
    assert [a.by for a in decided.approvals] == ["user:alice"]
    released = bot.release(submitted.id)
    assert released.status == "released" and released.payload == {"argv": ["restart"]}
    with pytest.raises(ApiError) as e:
        bot.release(submitted.id)
    assert e.value.status == 409
    assert bot.report_outcome(submitted.id, "failed", exit_code=3).outcome["status"] == "failed"


def test_refusals_carry_the_gateways_codes(gateway, prod):
    bot, alice, bob = gateway.client(), gateway.client("alice"), gateway.client("bob")
    submitted = bot.submit("shell.exec", prod, {"n": 1})
    with pytest.raises(ApiError) as e:
        bob.approve(submitted.id)  # bob owns the agent
    assert (e.value.status, e.value.code) == (403, "self_approval")
    with pytest.raises(ApiError) as e:
        bot.approve(submitted.id)
    assert (e.value.status, e.value.code) == (403, "humans_only")
    with pytest.raises(ApiError) as e:
        bot.release(submitted.id)
    assert (e.value.status, e.value.code) == (409, "not_approved")
    denied = alice.deny(submitted.id, "not today")
    assert denied.status == "denied" and denied.denials[0].comment == "not today"
    with pytest.raises(ApiError) as e:
        alice.approve(submitted.id)
    assert e.value.status == 409
    forbidden = bot.submit("shell.exec", "forbidden-box", {})
    assert forbidden.status == "denied" and "never-on-forbidden" in forbidden.policies


def test_cancel_comment_list_and_whoami(gateway, prod):
    bot, alice = gateway.client(), gateway.client("alice")
    submitted = bot.submit("deploy", prod, {"v": 2}, labels=["pii"], context={"confidence": 0.5})
    assert alice.comment(submitted.id, "looking").comments[0].by == "user:alice"
    mine = [r.id for r in alice.iter_actions(status="pending", resource=prod)]
    assert mine == [submitted.id]
    assert bot.cancel(submitted.id).status == "cancelled"
    assert bot.get(submitted.id).status == "cancelled"
    assert bot.whoami()["name"] == "bot"
    assert gateway.client("ann").audit(limit=5).events
    with pytest.raises(ApiError) as e:
        bot.audit()
    assert (e.value.status, e.value.code) == (403, "forbidden")
    assert bot.healthy() and bot.ready()
    assert "/v1/actions" in bot.openapi()["paths"]


def test_hostile_input_is_refused_not_smuggled(gateway):
    bot = gateway.client()
    # An id cannot climb out of its path segment.
    with pytest.raises(ApiError) as e:
        bot.get("../../v1/whoami")
    assert e.value.status == 404
    with pytest.raises(ApiError) as e:
        bot.submit("shell exec; rm", "staging-web", {})
    assert (e.value.status, e.value.code) == (422, "invalid_action")
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ApiError) as e:
        bot.submit("shell.exec", "staging-web", {"x": deep})
    assert e.value.code == "payload_too_deep"
    with pytest.raises(ApiError) as e:
        bot._call(countersign._core.Call("GET", "/v1/actions/x", {"wait": 61}))
    assert e.value.code == "invalid_wait"
    with pytest.raises(ApiError) as e:
        countersign.Client(gateway.url, "wrong").whoami()
    assert (e.value.status, e.value.code) == (401, "unauthenticated")
    with pytest.raises(ValueError):
        countersign.Client(gateway.url, "a\r\nX-Evil: 1")


def test_an_unreachable_gateway_is_an_error_not_an_answer(down_url):
    with pytest.raises(GatewayUnavailable):
        countersign.Client(down_url, "t").submit("shell.exec", "staging-web", {})


def test_async_client_does_the_same(gateway, prod):
    async def scenario() -> None:
        async with gateway.async_client() as bot, gateway.async_client("alice") as alice:
            allowed = await bot.submit("shell.exec", "staging-x", {"a": 1})
            assert allowed.status == "allowed"
            submitted = await bot.submit("shell.exec", prod, {"a": 2})
            waiting = asyncio.create_task(bot.wait(submitted.id))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            await alice.approve(submitted.id)
            assert (await waiting).status == "approved"
            assert (await bot.release(submitted.id)).status == "released"
            assert (await bot.report_outcome(submitted.id, "succeeded")).outcome is not None
            assert [r.id async for r in alice.iter_actions(resource=prod)] == [submitted.id]

    asyncio.run(scenario())


def test_a_wait_survives_a_gateway_crash_and_restart(tmp_path, prod):
    from conftest import Gateway

    gw = Gateway(tmp_path)
    try:
        bot, alice = gw.client(), gw.client("alice")
        submitted = bot.submit("shell.exec", prod, {"r": 1})
        answers = []
        waiter = threading.Thread(target=lambda: answers.append(bot.wait(submitted.id)))
        waiter.start()
        time.sleep(0.3)
        gw.restart()
        assert alice.approve(submitted.id).status == "approved"
        waiter.join(60)
        assert [a.status for a in answers] == ["approved"]
        assert bot.release(submitted.id).status == "released"
    finally:
        gw.stop()


def test_audit_proofs_and_operations(gateway):
    ann = gateway.client("ann")
    ann.submit("shell.exec", "staging-audit", {})  # something to prove
    page = ann.audit(limit=1000)
    assert page.events and page.next_after >= page.events[-1]["seq"]
    size = page.next_after
    proof = ann.inclusion_proof(1, size)
    assert proof["seq"] == 1 and proof["size"] == size and proof["root"]
    if size > 1:
        assert ann.consistency_proof(1, size)["to"] == size
    policies = ann.policies()
    assert policies["policies"] == 3 and policies["hash"]
    with pytest.raises(ApiError) as e:
        ann.reload_policies()  # admins only
    assert (e.value.status, e.value.code) == (403, "forbidden")
    assert "countersign" in ann.metrics()
