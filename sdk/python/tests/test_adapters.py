"""What each adapter adds beyond the shared scenario: the OpenAI Agents
interruption and its RunState, an approval given around the gateway, the
blocking LangChain path, and tools left ungated."""

from __future__ import annotations

import asyncio
from typing import List

import pytest

from agents import Agent, Runner
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

import countersign
from countersign.adapters.langchain import CountersignMiddleware
from countersign.adapters.openai_agents import Gate
from harness_openai_agents import _last_tool_output


def openai_agent(gate: Gate, resource: str, ran: List[str]) -> Agent:
    def refund(order: str) -> str:
        """Refund an order."""
        ran.append(order)
        return f"refunded {order}"

    model = ScriptedModel([
        [function_call("refund", {"order": "o-2"}, call_id="call-2")],
        ModelStep.respond(lambda call: [assistant_message(_last_tool_output(call))]),
    ])
    return Agent(name="ops", tools=[gate.tool(refund, resource=resource)], model=model)


def test_openai_pending_call_interrupts_the_run_until_the_gateway_decides(gateway, prod, approver):
    async def scenario() -> None:
        ran: List[str] = []
        gate = Gate(gateway.async_client())
        agent = openai_agent(gate, prod, ran)
        result = await Runner.run(agent, "refund o-2")
        assert [i.tool_name for i in result.interruptions] == ["refund"]
        assert ran == []
        a = approver(prod)
        state = await gate.resolve(result)
        result = await Runner.run(agent, state)
        assert ran == ["o-2"] and result.final_output == "refunded o-2"
        assert a.join().status == "approved"
        await gate.client.aclose()

    asyncio.run(scenario())


def test_openai_approval_around_the_gateway_runs_nothing(gateway, prod):
    async def scenario() -> None:
        ran: List[str] = []
        gate = Gate(gateway.async_client())
        agent = openai_agent(gate, prod, ran)
        result = await Runner.run(agent, "refund o-2")
        state = result.to_state()
        # The host approves by itself, without any approver at the gateway.
        state.approve(result.interruptions[0])
        result = await Runner.run(agent, state)
        assert ran == []
        assert "has not approved" in result.final_output and "did not run" in result.final_output
        pending = gateway.client().list(resource=prod).actions
        assert [r.status for r in pending] == ["pending"]
        await gate.client.aclose()

    asyncio.run(scenario())


def test_langchain_blocking_invoke_and_ungated_tools(gateway, prod, approver):
    from harness_langchain import ScriptedChat
    from langchain.agents import create_agent
    from langchain_core.tools import tool

    ran: List[str] = []

    @tool
    def refund(order: str) -> str:
        """Refund an order."""
        ran.append(order)
        return f"refunded {order}"

    bot = gateway.client()
    message = {"messages": [{"role": "user", "content": "refund"}]}
    a = approver(prod)
    agent = create_agent(ScriptedChat(), tools=[refund], middleware=[CountersignMiddleware(bot, resource=prod)])
    assert agent.invoke(message)["messages"][-1].content == "refunded o-1"
    assert ran == ["o-1"] and a.join().status == "approved"
    # Only the tools named are gated: nothing is submitted for another.
    other = "prod-" + "ungated"
    agent = create_agent(ScriptedChat(), tools=[refund],
                         middleware=[CountersignMiddleware(bot, resource=other, only={"delete_user"})])
    assert agent.invoke(message)["messages"][-1].content == "refunded o-1"
    assert ran == ["o-1", "o-1"] and bot.list(resource=other).actions == []


def test_pydantic_ai_action_for_chooses_what_is_gated(gateway):
    from harness_pydantic_ai import scripted
    from pydantic_ai import Agent as PAgent
    from pydantic_ai.models.function import FunctionModel
    from pydantic_ai.toolsets import FunctionToolset

    from countersign.adapters.pydantic_ai import CountersignToolset

    ran: List[str] = []

    def refund(order: str) -> str:
        """Refund an order."""
        ran.append(order)
        return f"refunded {order}"

    async def scenario(action_for) -> str:
        client = gateway.async_client()
        toolset = CountersignToolset(FunctionToolset([refund]), client=client, action_for=action_for)
        out = (await PAgent(FunctionModel(scripted), toolsets=[toolset]).run("go")).output
        await client.aclose()
        return out

    assert asyncio.run(scenario(lambda name, args: None)) == "refunded o-1"
    assert gateway.client().list(resource="staging-pa").actions == []
    assert asyncio.run(scenario(lambda name, args: ("payments.refund", "staging-pa"))) == "refunded o-1"
    [request] = gateway.client().list(resource="staging-pa").actions
    assert request.kind == "payments.refund" and request.payload["arguments"] == {"order": "o-1"}
    assert ran == ["o-1", "o-1"]


@pytest.mark.parametrize("verdict", ["approve", "deny"])
def test_langchain_interrupt_mode_checkpoints_while_pending(gateway, prod, approver, verdict):
    from harness_langchain import ScriptedChat
    from langchain.agents import create_agent
    from langchain_core.tools import tool
    from langgraph.checkpoint.memory import InMemorySaver

    ran: List[str] = []

    @tool
    def refund(order: str) -> str:
        """Refund an order."""
        ran.append(order)
        return f"refunded {order}"

    async def scenario() -> None:
        client = gateway.async_client()
        middleware = CountersignMiddleware(client, resource=prod, mode="interrupt")
        agent = create_agent(ScriptedChat(), tools=[refund], middleware=[middleware], checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "t1"}}
        result = await agent.ainvoke({"messages": [{"role": "user", "content": "refund"}]}, config)
        [held] = result["__interrupt__"]
        assert ran == [] and "waiting for approval from sre" in held.value["countersign"]["message"]
        a = approver(prod, verdict, "freeze")
        result = await agent.ainvoke(await middleware.resume(result), config)
        assert not result.get("__interrupt__")
        if verdict == "approve":
            assert result["messages"][-1].content == "refunded o-1" and ran == ["o-1"]
        else:
            assert "denied" in result["messages"][-1].content and "freeze" in result["messages"][-1].content
            assert ran == []
        assert a.join().id == held.value["countersign"]["id"]
        # One request: the re-executed node did not submit it again.
        assert len(gateway.client().list(resource=prod).actions) == 1
        await client.aclose()

    asyncio.run(scenario())
