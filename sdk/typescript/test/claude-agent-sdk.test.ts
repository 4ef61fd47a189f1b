// Claude Agent SDK: `canUseTool` and a `PostToolUse` hook callback, called
// in the shapes the SDK's own types define (checked by `tsc` over this
// file: `satisfies CanUseTool`, `HookCallback`, `PostToolUseHookInput`).
// Claude itself cannot run here, so the test plays the SDK's part: ask
// `canUseTool`, run the tool only on `allow` with `updatedInput`, then call
// the PostToolUse hook.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { CanUseTool, HookCallback, PermissionResult, PostToolUseHookInput } from '@anthropic-ai/claude-agent-sdk';

import { countersignCanUseTool, describeClaudeTool } from '../src/adapters/claude-agent-sdk.ts';
import { describe, runTool, scenario, type Harness, type ToolName } from './support.ts';

let calls = 0;

const harness: Harness = {
  async call(client, name: ToolName, input) {
    const cs = countersignCanUseTool({ client, describe, waitMs: 20_000 });
    const canUseTool: CanUseTool = cs.canUseTool;
    const postToolUse: HookCallback = cs.postToolUse;
    const toolUseID = `toolu_${++calls}`;
    const signal = AbortSignal.timeout(30_000);
    const decision: PermissionResult | null = await canUseTool(name, input, { signal, toolUseID, requestId: `req_${calls}` });
    assert.ok(decision, 'canUseTool never answers null: it sends no out-of-band response');
    if (decision.behavior === 'deny') return decision.message;
    const output = runTool(name, decision.updatedInput as { id: string });
    const post = {
      session_id: 's1',
      transcript_path: '/tmp/t.jsonl',
      cwd: '/tmp',
      hook_event_name: 'PostToolUse',
      tool_name: name,
      tool_input: decision.updatedInput,
      tool_response: output,
      tool_use_id: toolUseID,
    } satisfies PostToolUseHookInput;
    assert.deepEqual(await postToolUse(post, toolUseID, { signal }), {});
    return output;
  },
};

test('claude-agent-sdk canUseTool: the shared scenario', async () => {
  await scenario(harness);
});

test('claude-agent-sdk: Claude Code tools are named as the hook names them', () => {
  const d = describeClaudeTool('laptop');
  assert.deepEqual(d('Bash', { command: 'ls' }), { kind: 'shell.exec', resource: 'laptop', payload: { command: 'ls' } });
  assert.equal(d('Write', { file_path: '/a', content: 'x' }).kind, 'file.write');
  assert.equal(d('WebFetch', { url: 'https://Docs.Example.com/x' }).resource, 'docs.example.com');
  assert.equal(d('mcp__fs__Write_File', {}).resource, 'fs/write_file');
  assert.equal(d('Task', {}).kind, 'claude_code.tool_call');
});
