// `guard` and the typed client against a real gateway.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';

import { ApiError, CountersignClient, CountersignError, DeniedError, PendingError, UnreachableError } from '../src/index.ts';
import { agent, approver, gateway, scenario, unreachable, runTool, type Harness } from './support.ts';

const resources = { echo: 'staging', restart: 'prod-web', drop: 'prod-db' } as const;

const harness: Harness = {
  async call(client, tool, input) {
    try {
      return await client.guard('tool.call', resources[tool], input, () => runTool(tool, input));
    } catch (e) {
      return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    }
  },
};

test('guard: the shared scenario', async () => {
  await scenario(harness);
});

test('guard: typed errors', async () => {
  const a = agent();
  await assert.rejects(a.guard('tool.call', 'prod-db', { id: randomUUID() }, () => 1), DeniedError);
  await assert.rejects(unreachable().guard('tool.call', 'staging', {}, () => 1), UnreachableError);
  // Still pending when the caller stops waiting: PendingError names the request to ask about later.
  const e = await a.guard('tool.call', 'prod-web', { id: randomUUID() }, () => 1, { waitMs: 500 }).catch((x: unknown) => x);
  assert.ok(e instanceof PendingError);
  assert.match(e.message, /^pending approval \S+, ask again after it is approved$/);
  // A name outside the gateway's grammar is refused with its code; nothing runs.
  const bad = await a.guard('tool.call', 'PROD-web', {}, () => 1).catch((x: unknown) => x);
  assert.ok(bad instanceof ApiError && bad.code === 'invalid_action', String(bad));
  // A failing function is reported as failed and its error passes through.
  const id = randomUUID();
  await assert.rejects(a.guard('tool.call', 'staging', { id }, () => { throw new Error('boom'); }), /boom/);
  await a.flushOutcomes();
  const { actions } = await agent().list({ kind: 'tool.call', resource: 'staging' });
  const mine = actions.find((v) => (v.payload as { id?: string }).id === id);
  assert.equal((mine?.outcome as { status?: string } | undefined)?.status, 'failed');
  assert.throws(() => new CountersignClient({ server: gateway.server, token: '' }), /no API token/);
});

test('guard: a broken or oversized gateway answer runs nothing', async () => {
  const { createServer } = await import('node:http');
  const answers: Array<(res: import('node:http').ServerResponse) => void> = [
    (res) => res.writeHead(201, { 'content-type': 'application/json' }).end('not json'),
    (res) => res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'x', status: 'maybe' })),
    (res) => {
      res.writeHead(201, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      for (let i = 0; i < 9; i++) res.write(chunk);
      res.end('{}');
    },
    (res) => res.writeHead(201, { 'content-length': String(64 * 1024 * 1024) }).end(),
  ];
  let next = 0;
  const server = createServer((_req, res) => answers[next++]!(res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  const client = new CountersignClient({ server: `http://127.0.0.1:${port}`, token: 't' });
  let ran = 0;
  try {
    for (let i = 0; i < answers.length; i++) {
      const e = await client.guard('tool.call', 'staging', {}, () => ++ran).catch((x: unknown) => x);
      assert.ok(e instanceof CountersignError, `answer ${i}: ${String(e)}`);
    }
  } finally {
    server.closeAllConnections();
    server.close();
  }
  assert.equal(ran, 0);
});

test('guard: asking again finds the open request; an approval is taken once', async () => {
  const a = agent();
  const other = new CountersignClient({ server: gateway.server, token: gateway.approverToken });
  const payload = { id: randomUUID() };
  const first = await a.guard('tool.call', 'prod-web', payload, () => 1, { waitMs: 0 }).catch((x: unknown) => x);
  assert.ok(first instanceof PendingError, String(first));
  const again = await a.guard('tool.call', 'prod-web', payload, () => 1, { waitMs: 0 }).catch((x: unknown) => x);
  assert.ok(again instanceof PendingError, String(again));
  assert.equal(again.requestId, first.requestId, 'the same request, not a second one');
  const mine = (await a.list({ kind: 'tool.call', resource: 'prod-web' })).actions.filter(
    (v) => (v.payload as { id?: string }).id === payload.id,
  );
  assert.equal(mine.length, 1);
  // The approver is another principal: the same payload is its own request.
  const theirs = await other.submit({ kind: 'tool.call', resource: 'prod-web', payload }, { reuseOpen: true });
  assert.notEqual(theirs.id, first.requestId);
  assert.notEqual(theirs.reused, true);

  await approver().approve(first.requestId!, 'go');
  let ran = 0;
  assert.equal(await a.guard('tool.call', 'prod-web', payload, () => ++ran), 1);
  assert.equal((await a.get(first.requestId!)).status, 'released');
  // Replayed after it ran: a new request, pending again, and nothing runs.
  const replay = await a.guard('tool.call', 'prod-web', payload, () => ++ran, { waitMs: 0 }).catch((x: unknown) => x);
  assert.ok(replay instanceof PendingError, String(replay));
  assert.notEqual(replay.requestId, first.requestId);
  assert.equal(ran, 1);
});

test('background outcome reports are retried, flushed, and never lost silently', async () => {
  const lost: string[] = [];
  const a = new CountersignClient({ server: gateway.server, token: gateway.agentToken, onReportLost: (l) => lost.push(l.id) });
  const id = randomUUID();
  assert.equal(await a.guard('tool.call', 'staging', { id }, () => 'ok'), 'ok');
  assert.equal(await a.flushOutcomes(), 0);
  const view = (await a.list({ kind: 'tool.call', resource: 'staging' })).actions.find((v) => (v.payload as { id?: string }).id === id);
  assert.equal((view?.outcome as { status?: string } | undefined)?.status, 'succeeded');
  // A report the gateway refuses (already reported) is lost loudly, not silently.
  a.reportOutcomeLater(view!.id, { status: 'failed' });
  assert.equal(await a.flushOutcomes(), 1);
  assert.deepEqual(lost, [view!.id]);
  assert.ok(a.undelivered[0]?.error instanceof ApiError);
  // Awaited reports when asked for.
  const awaited = new CountersignClient({ server: gateway.server, token: gateway.agentToken, backgroundReports: false });
  const id2 = randomUUID();
  await awaited.guard('tool.call', 'staging', { id: id2 }, () => 1);
  const view2 = (await awaited.list({ kind: 'tool.call', resource: 'staging' })).actions.find((v) => (v.payload as { id?: string }).id === id2);
  assert.equal((view2?.outcome as { status?: string } | undefined)?.status, 'succeeded');
});
