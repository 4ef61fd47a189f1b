"""The shared scenario's LangChain/LangGraph side: `create_agent` (a real
LangGraph graph) with `CountersignMiddleware` and an offline chat model
built on langchain_core's `BaseChatModel`."""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool

import countersign
from countersign.adapters.langchain import CountersignMiddleware


class ScriptedChat(BaseChatModel):
    """Calls `refund(order="o-1")` once, then says what the tool answered."""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> "ScriptedChat":
        return self

    def _generate(self, messages: List[BaseMessage], stop: Optional[List[str]] = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        answers = [m for m in messages if isinstance(m, ToolMessage)]
        if answers:
            message = AIMessage(content=str(answers[-1].content))
        else:
            message = AIMessage(content="", tool_calls=[{"name": "refund", "args": {"order": "o-1"}, "id": "call-1"}])
        return ChatResult(generations=[ChatGeneration(message=message)])


async def run(client: countersign.AsyncClient, resource: str) -> Tuple[List[str], str]:
    ran: List[str] = []

    @tool
    def refund(order: str) -> str:
        """Refund an order."""
        ran.append(order)
        return f"refunded {order}"

    agent = create_agent(ScriptedChat(), tools=[refund],
                         middleware=[CountersignMiddleware(client, resource=resource)])
    state = await agent.ainvoke({"messages": [{"role": "user", "content": "refund order o-1"}]})
    return ran, str(state["messages"][-1].content)
