// The gateway the Rust driver (crates/cli/tests/sdk_typescript.rs) started,
// and the shared scenario every adapter runs against it.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';

import { CountersignClient } from '../src/index.ts';
import type { Action } from '../src/index.ts';

function need(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through \`cargo test --test sdk_typescript\``);
  return value;
}

export const gateway = {
  server: need('CS_TEST_SERVER'),
  agentToken: need('CS_TEST_AGENT_TOKEN'),
  approverToken: need('CS_TEST_APPROVER_TOKEN'),
  downServer: need('CS_TEST_DOWN_SERVER'),
};

export const agent = () => new CountersignClient({ server: gateway.server, token: gateway.agentToken });
export const approver = () => new CountersignClient({ server: gateway.server, token: gateway.approverToken });
export const unreachable = () => new CountersignClient({ server: gateway.downServer, token: gateway.agentToken, timeoutMs: 2000 });

/** The scenario's tools: `echo` is routine, `restart` waits for an SRE, `drop` is forbidden. */
export type ToolName = 'echo' | 'restart' | 'drop';

export const describe = (toolName: string, input: unknown): Action => ({
  kind: 'tool.call',
  resource: { echo: 'staging', restart: 'prod-web', drop: 'prod-db' }[toolName] ?? `unknown-${toolName.toLowerCase()}`,
  payload: input ?? {},
});

/** How many times each tool really ran. */
export const runs: Record<ToolName, number> = { echo: 0, restart: 0, drop: 0 };

export function runTool(name: ToolName, input: { id: string }): string {
  runs[name] += 1;
  return `${name} ran for ${input.id}`;
}

/** One adapter, driven through its framework with a scripted model. */
export interface Harness {
  /** The model calls `tool` once with `input`; resolves with what the model then sees as the result. */
  call(client: CountersignClient, tool: ToolName, input: { id: string }): Promise<string>;
}

async function approveWhenPending(id: string): Promise<string> {
  const a = approver();
  for (let i = 0; i < 200; i++) {
    const { actions } = await a.list({ status: 'pending', kind: 'tool.call', resource: 'prod-web' });
    const mine = actions.find((v) => (v.payload as { id?: string }).id === id);
    if (mine) {
      await a.approve(mine.id, 'go');
      return mine.id;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no pending request for ${id}`);
}

async function newest(resource: string, id: string) {
  const { actions } = await agent().list({ kind: 'tool.call', resource });
  const found = actions.filter((v) => (v.payload as { id?: string }).id === id);
  assert.equal(found.length, 1, `one call files one request on ${resource} (for ${id})`);
  return found[0];
}

/** The shared scenario: routine, sensitive (approved), denied, gateway down. */
export async function scenario(harness: Harness): Promise<void> {
  const before = { ...runs };

  const routine = randomUUID();
  const reporter = agent();
  const seen1 = await harness.call(reporter, 'echo', { id: routine });
  // Outcomes are reported in the background: wait for them before reading.
  assert.equal(await reporter.flushOutcomes(), 0, 'no report lost');
  assert.equal(runs.echo, before.echo + 1, 'the routine call runs at once, once');
  assert.match(seen1, new RegExp(`echo ran for ${routine}`));
  const r1 = await newest('staging', routine);
  assert.equal(r1.status, 'allowed');
  assert.equal((r1.outcome as { status?: string } | undefined)?.status, 'succeeded', 'the outcome is reported');

  const sensitive = randomUUID();
  const [seen2, approvedId] = await Promise.all([harness.call(reporter, 'restart', { id: sensitive }), approveWhenPending(sensitive)]);
  assert.equal(await reporter.flushOutcomes(), 0, 'no report lost');
  assert.equal(runs.restart, before.restart + 1, 'the approved call runs exactly once');
  assert.match(seen2, new RegExp(`restart ran for ${sensitive}`));
  assert.equal((await newest('prod-web', sensitive)).id, approvedId);
  const r2 = await approver().get(approvedId);
  assert.equal(r2.status, 'released');
  assert.equal((r2.outcome as { status?: string } | undefined)?.status, 'succeeded');

  const denied = randomUUID();
  const seen3 = await harness.call(agent(), 'drop', { id: denied });
  assert.equal(runs.drop, before.drop, 'a denied call never runs');
  assert.match(seen3, /denied/);
  assert.match(seen3, /no-drop|forbid/);
  assert.equal((await newest('prod-db', denied)).status, 'denied');

  const down = randomUUID();
  const seen4 = await harness.call(unreachable(), 'echo', { id: down });
  assert.equal(runs.echo, before.echo + 1, 'nothing runs while the gateway is down');
  assert.match(seen4, /cannot reach the gateway/);
}
