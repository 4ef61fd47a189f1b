"""The shared scenario's Pydantic AI side: a real `Agent` with the package's
offline `FunctionModel` and a `CountersignToolset` around a FunctionToolset."""

from __future__ import annotations

from typing import List, Tuple

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.toolsets import FunctionToolset

import countersign
from countersign.adapters.pydantic_ai import CountersignToolset


def scripted(messages: List[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Calls `refund(order="o-1")` once, then says what the tool answered."""
    returns = [p for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart)]
    if returns:
        return ModelResponse(parts=[TextPart(str(returns[-1].content))])
    return ModelResponse(parts=[ToolCallPart("refund", {"order": "o-1"}, tool_call_id="call-1")])


async def run(client: countersign.AsyncClient, resource: str) -> Tuple[List[str], str]:
    ran: List[str] = []

    def refund(order: str) -> str:
        """Refund an order."""
        ran.append(order)
        return f"refunded {order}"

    toolset = CountersignToolset(FunctionToolset([refund]), client=client, resource=resource)
    agent = Agent(FunctionModel(scripted), toolsets=[toolset])
    result = await agent.run("refund order o-1")
    return ran, str(result.output)
