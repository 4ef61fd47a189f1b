"""Pydantic AI: a toolset wrapper that clears every tool call with countersign.

    tools = CountersignToolset(FunctionToolset([refund]), countersign.AsyncClient(), resource="stripe")
    agent = Agent(model, toolsets=[tools])

Each call is submitted as `{"tool": name, "arguments": args}`: `allowed` runs
at once; `pending` waits for the gateway's pushed decision inside the call,
then releases its single-use approval and runs; a denial (or expiry,
revocation, cancellation) runs nothing and returns countersign's message as
the tool's result — what Pydantic AI does with a `ToolDenied` — so the model
reads who decided and why. An unreachable gateway raises
`GatewayUnavailable` out of the run (fail closed).

Chosen over Google ADK: Pydantic AI ships offline test models (`TestModel`,
`FunctionModel`) in the package, installs as `pydantic-ai-slim` with few
dependencies, is asyncio-native, and its `WrapperToolset` is one documented
hook around every tool call, whatever toolset it comes from (functions,
MCP servers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

from pydantic_ai.toolsets import WrapperToolset

from ..client import AsyncClient
from ..errors import ActionBlocked
from ..guard import Guard
from ._common import blocked_message, tool_payload


@dataclass
class CountersignToolset(WrapperToolset):
    """Wraps a toolset; every call is cleared by the gateway first."""

    client: Optional[AsyncClient] = None
    resource: Optional[str] = None
    #: A tool name and its arguments → (kind, resource), or None to run ungated.
    action_for: Optional[Callable[[str, Dict[str, Any]], Optional[Tuple[str, str]]]] = None
    timeout: Optional[float] = None
    justification: Optional[str] = None
    #: Send the outcome while the run goes on (see `countersign.guard.drain_reports`).
    background_report: bool = True

    def __post_init__(self) -> None:
        if self.client is None:
            raise ValueError("pass `client=` (a countersign.AsyncClient)")
        if self.action_for is None and self.resource is None:
            raise ValueError("pass `resource=` or `action_for=`")

    def _action(self, name: str, args: Dict[str, Any]) -> Optional[Tuple[str, str]]:
        if self.action_for is not None:
            return self.action_for(name, args)
        return f"tool.{name}", str(self.resource)

    async def call_tool(self, name: str, tool_args: Dict[str, Any], ctx: Any, tool: Any) -> Any:
        action = self._action(name, tool_args)
        if action is None:
            return await super().call_tool(name, tool_args, ctx, tool)
        guard = Guard(action[0], action[1], tool_payload(name, tool_args), client=self.client,
                      timeout=self.timeout, justification=self.justification,
                      background_report=self.background_report)
        try:
            permit = await guard._aclear_copy(guard.payload)  # tool_payload's JSON copy
        except ActionBlocked as e:
            return blocked_message(e.request)
        try:
            result = await super().call_tool(name, tool_args, ctx, tool)
        except BaseException as e:
            await guard.areport(permit, e)
            raise
        await guard.areport(permit)
        return result
