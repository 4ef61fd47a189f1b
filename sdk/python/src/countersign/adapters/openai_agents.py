"""OpenAI Agents SDK (`openai-agents`): tool approvals decided by countersign.

    gate = Gate(countersign.AsyncClient())
    refund = gate.tool(refund_fn, kind="payments.refund", resource="stripe")
    agent = Agent(name="ops", tools=[refund], model=...)
    result = await gate.run(agent, "refund order 7")

Each call of a gated tool is submitted as `needs_approval` runs: `allowed`
runs at once; `pending` or `denied` interrupts the run with a
`ToolApprovalItem`. `gate.resolve(result)` waits for the gateway's decision
(pushed) and answers the `RunState` with `approve()`, or `reject()` carrying
countersign's reason as the rejection message the model reads. When the run
resumes, the tool releases its single-use approval, checks it covers this
exact call, runs, and reports the outcome. An approval given only through
`RunState.approve()` without the gateway does not run anything: the release
is refused.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Optional, Tuple

from agents import Agent, FunctionTool, RunResult, Runner, RunState, function_tool
from agents.tool_context import ToolContext

from ..client import AsyncClient
from ..errors import ActionBlocked, ApiError, CountersignError
from ..guard import Guard, Permit, check_released
from ..types import Request
from ._common import blocked_message, error_message, tool_payload


class Gate:
    """Gates `FunctionTool`s of one run (or many) with a countersign gateway."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        timeout: Optional[float] = None,
        justification: Optional[str] = None,
        background_report: bool = True,
    ) -> None:
        self.client = client
        self.background_report = background_report
        self.timeout = timeout
        self.justification = justification
        # call id → (the submission, its payload); kept until the call runs.
        self._calls: Dict[str, Tuple[Request, Any]] = {}

    def tool(self, func: Callable[..., Any], *, resource: str, kind: Optional[str] = None,
             **function_tool_args: Any) -> FunctionTool:
        """`function_tool(func)`, gated."""
        return self.protect(function_tool(func, **function_tool_args), resource=resource, kind=kind)

    def protect(self, tool: FunctionTool, *, resource: str, kind: Optional[str] = None) -> FunctionTool:
        """Gates an existing `FunctionTool` (changed in place and returned)."""
        kind = kind or f"tool.{tool.name}"
        invoke = tool.on_invoke_tool
        name = tool.name

        async def needs_approval(ctx: Any, params: Dict[str, Any], call_id: str) -> bool:
            payload = tool_payload(name, params)
            submitted = await self.client.submit(kind, resource, payload, reuse_open=True,
                                                 justification=self.justification)
            self._calls[call_id] = (submitted, payload)
            return submitted.status != "allowed"

        async def on_invoke(ctx: ToolContext[Any], arguments: str) -> Any:
            payload = tool_payload(name, arguments)
            try:
                permit = await self._permit(ctx.tool_call_id, kind, resource, payload)
            except (ActionBlocked, ApiError) as e:
                return error_message(e)
            # GatewayUnavailable and PayloadMismatch propagate: the run stops.
            guard = Guard(kind, resource, client=self.client, background_report=self.background_report)
            try:
                output = await invoke(ctx, arguments)
            except BaseException as e:
                await guard.areport(permit, e)
                raise
            await guard.areport(permit)
            return output

        tool.needs_approval = needs_approval
        tool.on_invoke_tool = on_invoke
        return tool

    async def _permit(self, call_id: str, kind: str, resource: str, payload: Any) -> Permit:
        entry = self._calls.pop(call_id, None)
        if entry is None:
            # Not seen by needs_approval (a run resumed elsewhere): clear it now.
            return await Guard(kind, resource, payload, client=self.client, timeout=self.timeout,
                               justification=self.justification).aclear()
        submitted, submitted_payload = entry
        if submitted_payload != payload:
            raise ActionBlocked(submitted, f"tool call {call_id} changed after it was submitted; not running")
        if submitted.status == "allowed":
            return Permit(submitted)
        if submitted.status not in ("pending", "approved"):
            raise ActionBlocked(submitted, blocked_message(submitted))
        try:
            released = await self.client.release(submitted.id)
        except ApiError as e:
            raise ActionBlocked(await self.client.get(submitted.id),
                                f"countersign has not approved request {submitted.id} ({e.code}); it did not run") from e
        check_released(released, submitted, payload)
        return Permit(released)

    async def resolve(self, result: RunResult) -> RunState:
        """The run's state with every gated interruption answered by the gateway."""
        state = result.to_state()
        decisions = await asyncio.gather(*(self._decide(item) for item in result.interruptions))
        for item, decision in zip(result.interruptions, decisions):
            if decision is None:
                continue  # not one of ours: left to the caller
            approved, message = decision
            if approved:
                state.approve(item)
            else:
                state.reject(item, rejection_message=message)
        return state

    async def _decide(self, item: Any) -> Optional[Tuple[bool, str]]:
        entry = self._calls.get(item.call_id or "")
        if entry is None:
            return None
        submitted = entry[0]
        if submitted.status == "denied":
            self._calls.pop(item.call_id or "", None)
            return False, blocked_message(submitted)
        decided = await self.client.wait(submitted.id, self.timeout)
        if decided.pending:
            await self.client.cancel(submitted.id)
            decided = await self.client.get(submitted.id)
        if decided.status == "approved":
            return True, ""
        self._calls.pop(item.call_id or "", None)
        return False, blocked_message(decided)

    async def run(self, agent: Agent[Any], input: Any, *, max_resumes: int = 100, **run_args: Any) -> RunResult:
        """`Runner.run`, resuming after each interruption once the gateway has decided."""
        result = await Runner.run(agent, input, **run_args)
        for _ in range(max_resumes):
            if not result.interruptions:
                # Background reports are not waited for here: the client's
                # sender delivers them, and its close (or the interpreter's
                # exit) flushes them.
                return result
            result = await Runner.run(agent, await self.resolve(result), **run_args)
        raise CountersignError(f"the run was still interrupted after {max_resumes} resumes")
