"""What countersign adds to a tool call that needs no approval, per adapter.

Starts a gateway (the binary given, on a free loopback port, a temporary
SQLite data dir: every decision and outcome is fsynced before it is
answered), then times N routine calls each way — gated and not — and prints
p50/p90/p99 in milliseconds and the p50 difference (the overhead: one
submit and one outcome report, two loopback round trips).

    .venv-sdk-python/bin/python sdk/python/bench/overhead.py \
        --bin target/release/countersign --n 500

A benchmark, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Awaitable, Callable, Dict, List

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE.parent / "tests")]

import countersign  # noqa: E402


class TimedClient(countersign.AsyncClient):
    """Counts the time spent inside gateway calls, to split what the
    gateway costs from what the framework adds around it."""

    spent = 0.0

    async def _call(self, call, text=False):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return await super()._call(call, text)
        finally:
            TimedClient.spent += time.perf_counter() - started


IN_CALLS: List[float] = []


def quantiles(samples: List[float]) -> Dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50": statistics.median(ordered) * 1000, "p90": at(0.9), "p99": at(0.99)}


async def timed(n: int, warmup: int, once: Callable[[], Awaitable[None]]) -> List[float]:
    for _ in range(warmup):
        await once()
    samples = []
    IN_CALLS.clear()
    for _ in range(n):
        TimedClient.spent = 0.0
        started = time.perf_counter()
        await once()
        samples.append(time.perf_counter() - started)
        IN_CALLS.append(TimedClient.spent)
    return samples


def show(name: str, gated: List[float], plain: List[float], in_calls: List[float]) -> None:
    g, p = quantiles(gated), quantiles(plain)
    inside = statistics.median(in_calls) * 1000 if in_calls else 0.0
    print(f"{name:16} gated p50 {g['p50']:7.3f} p90 {g['p90']:7.3f} p99 {g['p99']:7.3f} | "
          f"plain p50 {p['p50']:7.3f} | overhead p50 {g['p50'] - p['p50']:7.3f} ms | "
          f"in async gateway calls p50 {inside:6.3f} ms")


async def bench(url: str, token: str, n: int, warmup: int) -> None:
    resource = "staging-bench"
    sync_client = countersign.Client(url, token)
    client = TimedClient(url, token)

    def work() -> str:
        return "done"

    async def as_async(fn: Callable[[], None]) -> None:
        fn()

    # The floor: the same two calls with bare httpx, no SDK (what the
    # gateway and loopback cost by themselves).
    import httpx

    raw = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})

    def raw_calls() -> None:
        answer = raw.post("/v1/actions", json={"kind": "bench.call", "resource": resource, "payload": {"n": 1}})
        raw.post(f"/v1/actions/{answer.json()['id']}/outcome", json={"status": "succeeded"}).raise_for_status()

    gated_samples = await timed(n, warmup, lambda: as_async(raw_calls))
    gated_in = list(IN_CALLS)
    show("httpx (floor)", gated_samples, await timed(n, warmup, lambda: as_async(work)), gated_in)

    def raw_submit() -> None:
        raw.post("/v1/actions", json={"kind": "bench.call", "resource": resource, "payload": {"n": 1}})

    gated_samples = await timed(n, warmup, lambda: as_async(raw_submit))
    gated_in = list(IN_CALLS)
    show("httpx submit", gated_samples, await timed(n, warmup, lambda: as_async(work)), gated_in)

    # guard(), blocking and asyncio
    def sync_gated() -> None:
        with countersign.guard("bench.call", resource, {"n": 1}, client=sync_client):
            work()

    gated_samples = await timed(n, warmup, lambda: as_async(sync_gated))
    gated_in = list(IN_CALLS)
    show("guard (sync)", gated_samples, await timed(n, warmup, lambda: as_async(work)), gated_in)

    async def async_gated() -> None:
        async with countersign.guard("bench.call", resource, {"n": 1}, client=client):
            work()

    async def async_plain() -> None:
        work()

    gated_samples = await timed(n, warmup, async_gated)
    gated_in = list(IN_CALLS)
    show("guard (async)", gated_samples, await timed(n, warmup, async_plain), gated_in)

    # OpenAI Agents SDK
    from agents import Agent, Runner, function_tool, set_tracing_disabled
    from agents.testing import ScriptedModel, assistant_message, function_call

    from countersign.adapters.openai_agents import Gate

    set_tracing_disabled(True)

    def refund(order: str) -> str:
        """Refund an order."""
        return f"refunded {order}"

    def script() -> ScriptedModel:
        return ScriptedModel([[function_call("refund", {"order": "o-1"}, call_id="c")], [assistant_message("ok")]])

    gate = Gate(client)
    gated_tool = gate.tool(refund, resource=resource)
    plain_tool = function_tool(refund)

    async def oa(tool: object, gated: bool) -> None:
        agent = Agent(name="b", tools=[tool], model=script())
        if gated:
            await gate.run(agent, "go")
        else:
            await Runner.run(agent, "go")

    gated_samples = await timed(n, warmup, lambda: oa(gated_tool, True))
    gated_in = list(IN_CALLS)
    show("openai-agents", gated_samples, await timed(n, warmup, lambda: oa(plain_tool, False)), gated_in)

    # LangChain / LangGraph
    from harness_langchain import ScriptedChat
    from langchain.agents import create_agent
    from langchain_core.tools import tool as lc_tool

    from countersign.adapters.langchain import CountersignMiddleware

    lc_refund = lc_tool(refund)
    lc_gated = create_agent(ScriptedChat(), tools=[lc_refund], middleware=[CountersignMiddleware(client, resource=resource)])
    lc_plain = create_agent(ScriptedChat(), tools=[lc_refund])
    message = {"messages": [{"role": "user", "content": "go"}]}

    async def lc(agent: object) -> None:
        await agent.ainvoke(message)  # type: ignore[attr-defined]

    gated_samples = await timed(n, warmup, lambda: lc(lc_gated))
    gated_in = list(IN_CALLS)
    show("langchain", gated_samples, await timed(n, warmup, lambda: lc(lc_plain)), gated_in)

    # Pydantic AI
    from harness_pydantic_ai import scripted
    from pydantic_ai import Agent as PAgent
    from pydantic_ai.models.function import FunctionModel
    from pydantic_ai.toolsets import FunctionToolset

    from countersign.adapters.pydantic_ai import CountersignToolset

    pa_gated = PAgent(FunctionModel(scripted), toolsets=[CountersignToolset(FunctionToolset([refund]), client=client,
                                                                           resource=resource)])
    pa_plain = PAgent(FunctionModel(scripted), toolsets=[FunctionToolset([refund])])

    async def pa(agent: PAgent) -> None:
        await agent.run("go")

    gated_samples = await timed(n, warmup, lambda: pa(pa_gated))
    gated_in = list(IN_CALLS)
    show("pydantic-ai", gated_samples, await timed(n, warmup, lambda: pa(pa_plain)), gated_in)

    # The same with the outcome sent in the background (one round trip off the path).
    print("background_report=True:")

    async def async_gated_bg() -> None:
        async with countersign.guard("bench.call", resource, {"n": 1}, client=client, background_report=True):
            work()

    gated_samples = await timed(n, warmup, async_gated_bg)
    gated_in = list(IN_CALLS)
    show("guard (async)", gated_samples, await timed(n, warmup, async_plain), gated_in)
    gate_bg = Gate(client, background_report=True)
    gated_bg_tool = gate_bg.tool(refund, resource=resource)

    async def oa_bg() -> None:
        await gate_bg.run(Agent(name="b", tools=[gated_bg_tool], model=script()), "go")

    gated_samples = await timed(n, warmup, oa_bg)
    gated_in = list(IN_CALLS)
    show("openai-agents", gated_samples, await timed(n, warmup, lambda: oa(plain_tool, False)), gated_in)
    lc_gated_bg = create_agent(ScriptedChat(), tools=[lc_refund],
                               middleware=[CountersignMiddleware(client, resource=resource, background_report=True)])
    gated_samples = await timed(n, warmup, lambda: lc(lc_gated_bg))
    gated_in = list(IN_CALLS)
    show("langchain", gated_samples, await timed(n, warmup, lambda: lc(lc_plain)), gated_in)
    pa_gated_bg = PAgent(FunctionModel(scripted), toolsets=[CountersignToolset(
        FunctionToolset([refund]), client=client, resource=resource, background_report=True)])
    gated_samples = await timed(n, warmup, lambda: pa(pa_gated_bg))
    gated_in = list(IN_CALLS)
    show("pydantic-ai", gated_samples, await timed(n, warmup, lambda: pa(pa_plain)), gated_in)
    await countersign.drain_reports()
    await client.aclose()
    sync_client.close()
    raw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=str(HERE.parents[2] / "target" / "release" / "countersign"))
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()
    os.environ["CS_SDK_BIN"] = args.bin
    import conftest

    with tempfile.TemporaryDirectory() as tmp:
        gateway = conftest.Gateway(Path(tmp))
        try:
            print(f"gateway {args.bin} at {gateway.url}; {args.n} calls each, {args.warmup} warm-up")
            asyncio.run(bench(gateway.url, gateway.tokens["bot"], args.n, args.warmup))
        finally:
            gateway.stop()


if __name__ == "__main__":
    main()
