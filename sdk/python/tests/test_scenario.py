"""One scenario, every adapter, a real gateway: a routine call runs at once;
a sensitive call waits, an approver approves through the API, and it runs
exactly once; a denied call (by policy, by a human) runs nothing and the
model reads the denial; a gateway that is down stops the call."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any, List, Tuple

import pytest

import countersign

ADAPTERS = ["openai_agents", "langchain", "pydantic_ai"]


def harness(name: str) -> Any:
    return importlib.import_module(f"harness_{name}")


def play(name: str, client: countersign.AsyncClient, resource: str) -> Tuple[List[str], str]:
    async def go() -> Tuple[List[str], str]:
        try:
            return await harness(name).run(client, resource)
        finally:
            await client.aclose()

    return asyncio.run(go())


def caused_by(error: BaseException, kind: type) -> bool:
    seen = set()
    stack = [error]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, kind):
            return True
        stack += [e.__cause__, e.__context__, *getattr(e, "exceptions", [])]
    return False


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_routine_call_runs_at_once(gateway, adapter):
    bot = gateway.client()
    before = {r.id for r in bot.iter_actions(resource="staging-pay")}
    ran, saw = play(adapter, gateway.async_client(), "staging-pay")
    assert ran == ["o-1"]
    assert "refunded o-1" in saw
    new = [r for r in bot.iter_actions(resource="staging-pay") if r.id not in before]
    assert [(r.status, r.outcome["status"]) for r in new] == [("allowed", "succeeded")]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_sensitive_call_waits_and_runs_exactly_once(gateway, prod, approver, adapter):
    a = approver(prod, "approve", "go ahead")
    ran, saw = play(adapter, gateway.async_client(), prod)
    assert ran == ["o-1"]
    assert "refunded o-1" in saw
    decided = a.join()
    view = gateway.client().get(decided.id)
    assert view.status == "released" and view.outcome["status"] == "succeeded"
    assert view.payload == {"tool": "refund", "arguments": {"order": "o-1"}}
    assert [r.id for r in gateway.client().iter_actions(resource=prod)] == [decided.id]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_denied_by_a_human_the_model_reads_why(gateway, prod, approver, adapter):
    a = approver(prod, "deny", "change freeze")
    ran, saw = play(adapter, gateway.async_client(), prod)
    assert ran == []
    assert "denied" in saw and "change freeze" in saw and a.join().id in saw


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_denied_by_policy_the_model_reads_why(gateway, adapter):
    ran, saw = play(adapter, gateway.async_client(), "forbidden-pay")
    assert ran == []
    assert "denied" in saw and "never-on-forbidden" in saw


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_gateway_down_stops_the_call(down_url, adapter):
    client = countersign.AsyncClient(down_url, "token")
    with pytest.raises(BaseException) as e:
        play(adapter, client, "staging-pay")
    assert caused_by(e.value, countersign.GatewayUnavailable), repr(e.value)
