"""LangChain 1.x / LangGraph: a human-in-the-loop middleware whose decision
comes from countersign.

    agent = create_agent(model, tools=[refund],
                         middleware=[CountersignMiddleware(countersign.AsyncClient(), resource="stripe")])
    await agent.ainvoke({"messages": [...]})

Every tool call the agent makes (or the ones named in `only`) is submitted
as an action `{"tool": name, "arguments": args}`: `allowed` runs at once;
`pending` waits inside the tool node for the gateway's pushed decision, then
releases the single-use approval and runs; `denied`, `expired`, `revoked`
or `cancelled` runs nothing and answers the model with a `ToolMessage`
(`status="error"`) saying who decided and why — the way LangChain's own
`HumanInTheLoopMiddleware` answers a rejected call. An unreachable gateway
raises `GatewayUnavailable` out of the graph (fail closed). The outcome is
reported from the tool's `ToolMessage` (`status="error"` → `failed`).

With `mode="interrupt"` (async, needs a checkpointer) a pending call does not
hold the tool node: it calls LangGraph's `interrupt()` with
`{"countersign": {"id", "tool_call_id", "message"}}`, the run returns with
`__interrupt__`, and the host resumes it once the gateway has decided:

    result = await agent.ainvoke(input, config)
    while result.get("__interrupt__"):
        result = await agent.ainvoke(await middleware.resume(result), config)

`resume()` waits for each decision (pushed). Whatever the host resumes with,
the tool runs only if the gateway releases the approval.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Container, Dict, Optional, Tuple, Union

from langchain.agents.middleware import AgentMiddleware
from langchain_core.messages import ToolCall, ToolMessage
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command, interrupt

from ..client import AsyncClient, Client
from ..errors import ActionBlocked, ApiError, CountersignError
from ..guard import Guard, Permit, check_released
from ..types import Request
from ._common import blocked_message, pending_message, tool_payload

Result = Union[ToolMessage, Command[Any]]
#: A tool call → (kind, resource), or None to let it run ungated.
ActionFor = Callable[[ToolCall], Optional[Tuple[str, str]]]


class CountersignMiddleware(AgentMiddleware):
    """Gates tool calls with countersign (sync with a `Client`, async with an `AsyncClient`)."""

    def __init__(
        self,
        client: Union[Client, AsyncClient],
        *,
        resource: Optional[str] = None,
        only: Optional[Container[str]] = None,
        action_for: Optional[ActionFor] = None,
        timeout: Optional[float] = None,
        justification: Optional[str] = None,
        background_report: bool = True,
        mode: str = "wait",
    ) -> None:
        super().__init__()
        if mode not in ("wait", "interrupt"):
            raise ValueError("`mode` is `wait` or `interrupt`")
        self.mode = mode
        # tool call id → its pending submission, so that the node's
        # re-execution after a resume does not submit it again.
        self._pending: Dict[str, Tuple[Request, Any]] = {}
        self.background_report = background_report
        if action_for is None and resource is None:
            raise ValueError("pass `resource=` or `action_for=`")
        self.client = client
        self.resource = resource
        # Not `tools`: AgentMiddleware.tools is the tools a middleware adds.
        self.only = only
        self.action_for = action_for
        self.timeout = timeout
        self.justification = justification

    def _action(self, call: ToolCall) -> Optional[Tuple[str, str]]:
        if self.action_for is not None:
            return self.action_for(call)
        if self.only is not None and call["name"] not in self.only:
            return None
        return f"tool.{call['name']}", str(self.resource)

    def _guard(self, call: ToolCall, action: Tuple[str, str]) -> Guard:
        return Guard(action[0], action[1], tool_payload(call["name"], call.get("args", {})), client=self.client,
                     timeout=self.timeout, justification=self.justification,
                     background_report=self.background_report)

    @staticmethod
    def _refused(call: ToolCall, error: ActionBlocked) -> ToolMessage:
        return ToolMessage(content=blocked_message(error.request), tool_call_id=call["id"], name=call["name"],
                           status="error")

    @staticmethod
    def _error_of(result: Result) -> Optional[BaseException]:
        if isinstance(result, ToolMessage) and result.status == "error":
            return RuntimeError(str(result.content)[:200])
        return None

    def wrap_tool_call(self, request: ToolCallRequest, handler: Callable[[ToolCallRequest], Result]) -> Result:
        call = request.tool_call
        action = self._action(call)
        if action is None:
            return handler(request)
        guard = self._guard(call, action)
        try:
            # tool_payload is already a JSON copy: not copied again.
            permit: Permit = guard._clear_copy(guard.payload)
        except ActionBlocked as e:
            return self._refused(call, e)
        try:
            result = handler(request)
        except BaseException as e:
            guard.report(permit, e)
            raise
        guard.report(permit, self._error_of(result))
        return result

    async def awrap_tool_call(
        self, request: ToolCallRequest, handler: Callable[[ToolCallRequest], Awaitable[Result]]
    ) -> Result:
        call = request.tool_call
        action = self._action(call)
        if action is None:
            return await handler(request)
        guard = self._guard(call, action)
        try:
            if self.mode == "interrupt":
                permit = await self._clear_or_interrupt(call, guard)
            else:
                permit = await guard._aclear_copy(guard.payload)
        except ActionBlocked as e:
            return self._refused(call, e)
        try:
            result = await handler(request)
        except BaseException as e:
            await guard.areport(permit, e)
            raise
        await guard.areport(permit, self._error_of(result))
        return result

    async def _clear_or_interrupt(self, call: ToolCall, guard: Guard) -> Permit:
        client = guard._async_client()
        payload = guard.payload  # tool_payload's JSON copy
        call_id = call["id"]
        if call_id is None:
            # Its interruption could not be matched to its resume: never run it.
            raise CountersignError("a tool call without an id cannot wait for approval in interrupt mode")
        entry = self._pending.get(call_id)
        if entry is None:
            # Reused: a run resumed in another process finds its open request.
            submitted = await client.submit(guard.kind, guard.resource, payload, reuse_open=True, **guard.fields)
            if submitted.status == "allowed":
                return Permit(submitted)
            if submitted.status not in ("pending", "approved"):
                raise ActionBlocked(submitted, blocked_message(submitted))
            self._pending[call_id] = (submitted, payload)
        else:
            submitted = entry[0]
            if entry[1] != payload:
                raise ActionBlocked(submitted, f"tool call {call_id} changed while it waited; not running")
        # Raises GraphInterrupt the first time; returns the resume value after.
        interrupt({"countersign": {"id": submitted.id, "tool_call_id": call_id,
                                   "message": pending_message(submitted)}})
        self._pending.pop(call_id, None)
        try:
            released = await client.release(submitted.id)
        except ApiError as e:
            view = await client.get(submitted.id)
            raise ActionBlocked(view, blocked_message(view)) from e
        check_released(released, submitted, payload)
        return Permit(released)

    async def resume(self, result: Dict[str, Any]) -> Command[Any]:
        """The `Command` that resumes an interrupted run once the gateway decided each held call."""
        resume: Dict[str, Any] = {}
        for pending in result.get("__interrupt__", []):
            value = pending.value.get("countersign") if isinstance(pending.value, dict) else None
            if not isinstance(value, dict):
                continue  # not ours
            client = self.client
            if not isinstance(client, AsyncClient):
                raise TypeError("mode=\"interrupt\" needs a countersign.AsyncClient")
            decided = await client.wait(str(value["id"]), self.timeout)
            resume[pending.id] = {"id": decided.id, "status": decided.status}
        return Command(resume=resume)
