// Vercel AI SDK (`ai`): countersign as the `toolApproval` of
// generateText / streamText. Each tool call is decided by the gateway:
// allowed or approved → `approved` (the tool runs, under the released
// request, and its outcome is reported); denied, expired, revoked, still
// pending after `waitMs`, or gateway unreachable → `denied` with the reason,
// which the SDK hands to the model as the tool's denied output.
//
//   const cs = countersignForAI({ describe });
//   await generateText({ model, tools: cs.tools(myTools), toolApproval: cs.toolApproval, prompt });

import { CountersignClient } from '../client.ts';
import { describeToolCall, Ledger, runReported, verdict, type AdapterOptions } from './common.ts';

type ApprovalStatus = { type: 'approved'; reason?: string } | { type: 'denied'; reason?: string };

interface ToolCallLike {
  toolCallId: string;
  toolName: string;
  input: unknown;
}

export function countersignForAI(options: AdapterOptions = {}) {
  const client = options.client ?? new CountersignClient();
  const describe = options.describe ?? describeToolCall;
  const waitMs = options.waitMs ?? 30_000;
  const ledger = new Ledger();

  /** The generic `toolApproval` function: one decision per tool call. */
  const toolApproval = async ({ toolCall }: { toolCall: ToolCallLike }): Promise<ApprovalStatus> => {
    let action;
    try {
      action = describe(toolCall.toolName, toolCall.input);
    } catch (e) {
      return { type: 'denied', reason: `countersign cannot describe this call: ${String(e)}` };
    }
    const v = await verdict(client, action, waitMs);
    if (!v.run) return { type: 'denied', reason: v.message };
    ledger.grant(toolCall.toolCallId, v.requestId);
    return { type: 'approved', reason: `countersign request ${v.requestId}` };
  };

  /** Wraps each tool's `execute` so it runs only under a granted request, and reports the outcome. */
  function tools<T extends Record<string, { execute?: (...args: any[]) => any }>>(set: T): T {
    const wrapped: Record<string, unknown> = {};
    for (const [name, tool] of Object.entries(set)) {
      const execute = tool.execute;
      if (!execute) {
        wrapped[name] = tool;
        continue;
      }
      wrapped[name] = {
        ...tool,
        execute: (input: unknown, opts: { toolCallId: string }) => {
          const requestId = ledger.take(opts.toolCallId);
          return runReported(client, requestId, () => execute.call(tool, input, opts));
        },
      };
    }
    return wrapped as T;
  }

  return { toolApproval, tools, client };
}
