"""The shared scenario's OpenAI Agents SDK side: a real `Agent` and `Runner`
with the SDK's own offline `ScriptedModel`, one gated tool."""

from __future__ import annotations

from typing import Any, List, Tuple

from agents import Agent, set_tracing_disabled
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

import countersign
from countersign.adapters.openai_agents import Gate

# Offline: no trace export.
set_tracing_disabled(True)


def _last_tool_output(call: Any) -> str:
    outputs = [i for i in call.input if isinstance(i, dict) and i.get("type") == "function_call_output"]
    assert outputs, "the model was called again without the tool's answer"
    output = outputs[-1]["output"]
    return output if isinstance(output, str) else str(output)


async def run(client: countersign.AsyncClient, resource: str) -> Tuple[List[str], str]:
    ran: List[str] = []

    def refund(order: str) -> str:
        """Refund an order."""
        ran.append(order)
        return f"refunded {order}"

    gate = Gate(client)
    model = ScriptedModel([
        [function_call("refund", {"order": "o-1"}, call_id="call-1")],
        ModelStep.respond(lambda call: [assistant_message(_last_tool_output(call))]),
    ])
    agent = Agent(name="ops", instructions="refund", tools=[gate.tool(refund, resource=resource, kind="payments.refund")],
                  model=model)
    result = await gate.run(agent, "refund order o-1")
    return ran, str(result.final_output)
