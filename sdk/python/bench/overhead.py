"""What countersign adds to a tool call that needs no approval, per adapter.

Starts a gateway (the binary given, on a free loopback port, a temporary
SQLite data dir: every decision and outcome is fsynced before it is
answered). For each variant it runs the same framework call with and
without countersign, alternating in one loop (gated, plain, plain, gated,
…), so both see the same machine load, and prints p50/p90/p99 in ms and
the overhead: p50(gated) − p50(plain), the median of the paired
differences, and the mean CPU time this process (all its threads) spent
per gated call over a plain one — the SDK's own work, which a loaded
machine moves far less than the wall-clock figures. `--gap-ms` sleeps
between iterations, outside the timed part, as a model call separates
tool calls in a real run (0: back to back). The `cold` rows time one SDK
call back to back and right after an (untimed) framework run.

    .venv-sdk-python/bin/python sdk/python/bench/overhead.py \
        --bin target/release/countersign --n 500 --gap-ms 0

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
from typing import Any, Awaitable, Callable, Dict, List

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE.parent / "tests")]

import countersign  # noqa: E402

Run = Callable[[], Awaitable[Any]]


def quantiles(samples: List[float]) -> Dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50": statistics.median(ordered) * 1000, "p90": at(0.9), "p99": at(0.99)}


async def paired(name: str, n: int, warmup: int, gap: float, gated: Run, plain: Run) -> None:
    """Times `gated` and `plain` alternately (ABBA), `n` times each."""
    g: List[float] = []
    p: List[float] = []
    # CPU seconds of this process (every thread: the outcome sender's too),
    # gated and plain: what the SDK itself costs, which the machine's load
    # moves far less than the wall-clock figures.
    cpu = {id(g): 0.0, id(p): 0.0}
    for i in range(warmup + n):
        order = [(gated, g), (plain, p)] if i % 2 == 0 else [(plain, p), (gated, g)]
        for run, into in order:
            if gap:
                await asyncio.sleep(gap)
            started, cpu_started = time.perf_counter(), time.process_time()
            await run()
            if i >= warmup:
                into.append(time.perf_counter() - started)
                cpu[id(into)] += time.process_time() - cpu_started
    gq, pq = quantiles(g), quantiles(p)
    diffs = statistics.median(a - b for a, b in zip(g, p)) * 1000
    extra_cpu = (cpu[id(g)] - cpu[id(p)]) / n * 1000
    print(f"{name:34} gated p50 {gq['p50']:6.2f} p90 {gq['p90']:6.2f} p99 {gq['p99']:6.2f} | "
          f"plain p50 {pq['p50']:6.2f} | overhead p50 {gq['p50'] - pq['p50']:6.2f} ms "
          f"(paired {diffs:6.2f}; CPU {extra_cpu:5.2f} ms)", flush=True)


async def after(name: str, n: int, warmup: int, before: Run, timed: Run) -> None:
    """`timed` back to back, then each time right after an untimed `before`
    (a framework run: the caches hold its code and data, not the SDK's)."""
    for label, first in (("alone", None), ("after a framework run", before)):
        samples: List[float] = []
        cpu = 0.0
        for i in range(warmup + n):
            if first is not None:
                await first()
            started, cpu_started = time.perf_counter(), time.process_time()
            await timed()
            if i >= warmup:
                samples.append(time.perf_counter() - started)
                cpu += time.process_time() - cpu_started
        q = quantiles(samples)
        print(f"{name + ', ' + label:62} p50 {q['p50']:6.2f} p90 {q['p90']:6.2f} | CPU {cpu / n * 1000:5.2f} ms",
              flush=True)


async def bench(url: str, token: str, n: int, warmup: int, gap: float, only: str) -> None:
    resource = "staging-bench"
    sync_client = countersign.Client(url, token)
    client = countersign.AsyncClient(url, token)

    def work() -> str:
        return "done"

    async def nothing() -> None:
        work()

    def wanted(name: str) -> bool:
        return not only or any(o in name for o in only.split(","))

    # The floor: bare httpx, no SDK (what the gateway and loopback cost).
    import httpx

    raw = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})

    async def raw_submit() -> None:
        raw.post("/v1/actions", json={"kind": "bench.call", "resource": resource, "payload": {"n": 1}})

    async def raw_both() -> None:
        answer = raw.post("/v1/actions", json={"kind": "bench.call", "resource": resource, "payload": {"n": 1}})
        raw.post(f"/v1/actions/{answer.json()['id']}/outcome", json={"status": "succeeded"}).raise_for_status()

    if wanted("floor"):
        await paired("floor: httpx submit", n, warmup, gap, raw_submit, nothing)
        await paired("floor: httpx submit + outcome", n, warmup, gap, raw_both, nothing)

    for background in (False, True):
        tag = " (bg report)" if background else " (awaited report)"

        async def sync_gated() -> None:
            with countersign.guard("bench.call", resource, {"n": 1}, client=sync_client,
                                   background_report=background):
                work()

        async def async_gated() -> None:
            async with countersign.guard("bench.call", resource, {"n": 1}, client=client,
                                         background_report=background):
                work()

        if wanted("guard"):
            await paired("guard sync" + tag, n, warmup, gap, sync_gated, nothing)
            await paired("guard async" + tag, n, warmup, gap, async_gated, nothing)

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

    plain_tool = function_tool(refund)

    async def oa_plain() -> None:
        await Runner.run(Agent(name="b", tools=[plain_tool], model=script()), "go")

    # LangChain / LangGraph
    from harness_langchain import ScriptedChat
    from langchain.agents import create_agent
    from langchain_core.tools import tool as lc_tool

    from countersign.adapters.langchain import CountersignMiddleware

    lc_refund = lc_tool(refund)
    lc_plain = create_agent(ScriptedChat(), tools=[lc_refund])
    message = {"messages": [{"role": "user", "content": "go"}]}

    # Pydantic AI
    from harness_pydantic_ai import scripted
    from pydantic_ai import Agent as PAgent
    from pydantic_ai.models.function import FunctionModel
    from pydantic_ai.toolsets import FunctionToolset

    from countersign.adapters.pydantic_ai import CountersignToolset

    pa_plain = PAgent(FunctionModel(scripted), toolsets=[FunctionToolset([refund])])

    # The same SDK call, warm (back to back) and right after a framework
    # run: what running inside an agent costs the SDK's code, which the
    # adapters' rows pay and `guard()`'s do not.
    if wanted("cold"):
        async def health() -> None:
            await client.healthy()

        async def submit() -> None:
            await client.submit("bench.call", resource, {"n": 1})

        async def guard_awaited() -> None:
            async with countersign.guard("bench.call", resource, {"n": 1}, client=client, background_report=False):
                work()

        async def framework() -> None:
            await pa_plain.run("go")

        await after("cold: GET /healthz", n, warmup, framework, health)
        await after("cold: submit", n, warmup, framework, submit)
        await after("cold: guard() asyncio, awaited report", n, warmup, framework, guard_awaited)

    # Each framework's own cost of a hook with nothing in it (no gateway
    # call): the part of an adapter's overhead no gateway or SDK change
    # can remove.
    from langchain.agents.middleware import AgentMiddleware
    from pydantic_ai.toolsets import WrapperToolset

    hooked_tool = function_tool(refund)

    async def never_needs_approval(ctx: Any, params: Any, call_id: str) -> bool:
        return False

    hooked_tool.needs_approval = never_needs_approval
    invoke_plain = hooked_tool.on_invoke_tool

    async def invoke_through(ctx: Any, arguments: str) -> Any:
        return await invoke_plain(ctx, arguments)

    hooked_tool.on_invoke_tool = invoke_through

    class PassThrough(AgentMiddleware):  # type: ignore[type-arg]
        async def awrap_tool_call(self, request: Any, handler: Any) -> Any:
            return await handler(request)

    lc_hooked = create_agent(ScriptedChat(), tools=[lc_refund], middleware=[PassThrough()])
    pa_hooked = PAgent(FunctionModel(scripted), toolsets=[WrapperToolset(FunctionToolset([refund]))])

    async def oa_hooked() -> None:
        await Runner.run(Agent(name="b", tools=[hooked_tool], model=script()), "go")

    if wanted("hooks"):
        await paired("hook alone: openai-agents", n, warmup, gap, oa_hooked, oa_plain)
        await paired("hook alone: langchain", n, warmup, gap,
                     lambda: lc_hooked.ainvoke(message), lambda: lc_plain.ainvoke(message))
        await paired("hook alone: pydantic-ai", n, warmup, gap, lambda: pa_hooked.run("go"), lambda: pa_plain.run("go"))

    for background in (False, True):
        tag = " (bg report)" if background else " (awaited report)"
        gate = Gate(client, background_report=background)
        gated_tool = gate.tool(refund, resource=resource)

        async def oa_gated() -> None:
            await gate.run(Agent(name="b", tools=[gated_tool], model=script()), "go")

        lc_gated = create_agent(ScriptedChat(), tools=[lc_refund], middleware=[
            CountersignMiddleware(client, resource=resource, background_report=background)])
        pa_gated = PAgent(FunctionModel(scripted), toolsets=[CountersignToolset(
            FunctionToolset([refund]), client=client, resource=resource, background_report=background)])

        if wanted("openai"):
            await paired("openai-agents" + tag, n, warmup, gap, oa_gated, oa_plain)
        if wanted("langchain"):
            await paired("langchain" + tag, n, warmup, gap,
                         lambda: lc_gated.ainvoke(message), lambda: lc_plain.ainvoke(message))
        if wanted("pydantic"):
            await paired("pydantic-ai" + tag, n, warmup, gap, lambda: pa_gated.run("go"), lambda: pa_plain.run("go"))

    await countersign.drain_reports()
    await client.aclose()
    sync_client.close()
    raw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=str(HERE.parents[2] / "target" / "release" / "countersign"))
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--gap-ms", type=float, default=0.0, help="pause between iterations, untimed")
    parser.add_argument("--only", default="",
                        help="comma-separated names: floor,guard,cold,hooks,openai,langchain,pydantic")
    args = parser.parse_args()
    os.environ["CS_SDK_BIN"] = args.bin
    import conftest

    with tempfile.TemporaryDirectory() as tmp:
        gateway = conftest.Gateway(Path(tmp))
        try:
            print(f"gateway {args.bin} at {gateway.url}; {args.n} calls each way, {args.warmup} warm-up, "
                  f"gap {args.gap_ms} ms")
            asyncio.run(bench(gateway.url, gateway.tokens["bot"], args.n, args.warmup, args.gap_ms / 1000,
                              args.only))
        finally:
            gateway.stop()


if __name__ == "__main__":
    main()
