// Claude Agent SDK (`@anthropic-ai/claude-agent-sdk`): countersign as the
// `canUseTool` callback, and a `PostToolUse` hook that reports the outcome.
// The tool call is described the way `countersign hook claude-code` does
// it for the common tools (Bash → shell.exec; Write/Edit/MultiEdit/
// NotebookEdit → file.write; WebFetch → http.request; mcp__S__T →
// mcp.tool_call on S/T), unless `describe` is given.
//
//   const cs = countersignCanUseTool({ resource: 'laptop' });
//   query({ prompt, options: { canUseTool: cs.canUseTool, hooks: { PostToolUse: [{ hooks: [cs.postToolUse] }] } } });

import { createHash } from 'node:crypto';

import { CountersignClient } from '../client.ts';
import type { Action } from '../types.ts';
import { Ledger, verdict, type AdapterOptions, type Describe } from './common.ts';

type PermissionResult =
  | { behavior: 'allow'; updatedInput?: Record<string, unknown> }
  | { behavior: 'deny'; message: string; interrupt?: boolean };

/** The Claude Code tool table (simplified: no diff against the file on disk). */
export function describeClaudeTool(resource: string): Describe {
  return (toolName, input) => {
    const i = (input ?? {}) as Record<string, unknown>;
    const sha = (...parts: unknown[]) => createHash('sha256').update(JSON.stringify(parts)).digest('hex');
    const mcp = /^mcp__(.+?)__(.+)$/.exec(toolName);
    if (toolName === 'Bash') return { kind: 'shell.exec', resource, payload: { command: i['command'] } };
    if (['Write', 'Edit', 'MultiEdit', 'NotebookEdit'].includes(toolName)) {
      return {
        kind: 'file.write',
        resource,
        payload: { path: i['file_path'] ?? i['notebook_path'], operation: toolName, content_sha256: sha(toolName, i) },
      };
    }
    if (toolName === 'WebFetch') {
      const url = String(i['url'] ?? '');
      let host = '';
      try {
        host = new URL(url).host.toLowerCase();
      } catch {
        host = 'invalid-url';
      }
      return { kind: 'http.request', resource: host, payload: { method: 'GET', url } };
    }
    if (mcp) return { kind: 'mcp.tool_call', resource: `${mcp[1]}/${mcp[2]}`.toLowerCase(), payload: input ?? {} };
    return { kind: 'claude_code.tool_call', resource: `${resource}/${toolName.toLowerCase()}`, payload: input ?? {} };
  };
}

export interface ClaudeAdapterOptions extends AdapterOptions {
  /** The resource for local tools (default `claude-code`). */
  resource?: string;
}

export function countersignCanUseTool(options: ClaudeAdapterOptions = {}) {
  const client = options.client ?? new CountersignClient();
  const describe = options.describe ?? describeClaudeTool(options.resource ?? 'claude-code');
  const waitMs = options.waitMs ?? 30_000;
  const ledger = new Ledger();

  const canUseTool = async (
    toolName: string,
    input: Record<string, unknown>,
    opts: { signal: AbortSignal; toolUseID: string },
  ): Promise<PermissionResult> => {
    let action: Action;
    try {
      action = describe(toolName, input);
    } catch (e) {
      return { behavior: 'deny', message: `countersign cannot describe this call: ${String(e)}` };
    }
    const v = await verdict(client, action, waitMs);
    if (!v.run) return { behavior: 'deny', message: v.message };
    ledger.grant(opts.toolUseID, v.requestId);
    // The input is passed back unchanged: what runs is what was approved.
    return { behavior: 'allow', updatedInput: input };
  };

  /** A `PostToolUse` / `PostToolUseFailure` hook callback reporting the outcome. */
  const postToolUse = async (input: { hook_event_name: string; tool_response?: unknown; error?: unknown }, toolUseID: string | undefined) => {
    if (!toolUseID) return {};
    let requestId: string;
    try {
      requestId = ledger.take(toolUseID);
    } catch {
      return {};
    }
    const failed = input.hook_event_name === 'PostToolUseFailure';
    const output = JSON.stringify(input.tool_response ?? input.error ?? null) ?? 'null';
    await client.reportAfterRun(requestId, {
      status: failed ? 'failed' : 'succeeded',
      output_sha256: createHash('sha256').update(output).digest('hex'),
    });
    return {};
  };

  return { canUseTool, postToolUse, client };
}
