// Overhead of each adapter when nothing needs approval: the same tool call
// with and without countersign, alternating in one loop (guarded, plain,
// plain, guarded, …) so both see the same load, against a running gateway
// whose policy allows `tool.call` on `staging` (bench/run.sh sets one up).
// The overhead includes the gateway's durable decision (the audit event is
// fsynced before the answer); each adapter runs twice: with the outcome
// report awaited, and sent in the background (the default). CS_BENCH_GAP_MS
// pauses between iterations, untimed, as a model call would (default 0).
//
//   CS_BENCH_SERVER=http://127.0.0.1:PORT CS_BENCH_TOKEN=csa_… node --experimental-strip-types bench/overhead.ts [iterations]

import { performance } from 'node:perf_hooks';

import { generateText, stepCountIs, tool } from 'ai';
import { MockLanguageModelV4 } from 'ai/test';
import { Agent, Runner, Usage, setTracingDisabled, tool as agentTool, type Model, type ModelResponse } from '@openai/agents';
import { z } from 'zod';

import { CountersignClient } from '../src/index.ts';
import { countersignForAI } from '../src/adapters/ai.ts';
import { countersignForAgents } from '../src/adapters/openai-agents.ts';
import { countersignCanUseTool } from '../src/adapters/claude-agent-sdk.ts';
import type { Action } from '../src/types.ts';

setTracingDisabled(true);
const iterations = Number(process.argv[2] ?? 300);
const server = process.env['CS_BENCH_SERVER'];
const token = process.env['CS_BENCH_TOKEN'];
if (!server || !token) throw new Error('set CS_BENCH_SERVER and CS_BENCH_TOKEN (see bench/run.sh)');
const background = new CountersignClient({ server, token });
const awaited = new CountersignClient({ server, token, backgroundReports: false });
const gapMs = Number(process.env['CS_BENCH_GAP_MS'] ?? 0);
const describe = (_: string, input: unknown): Action => ({ kind: 'tool.call', resource: 'staging', payload: input ?? {} });
const schema = z.object({ n: z.number() });
const usage = { inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 1, text: 1, reasoning: 0 } };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `plain` and `guarded` alternately; returns both sorted and the paired differences. */
async function measure(plain: (i: number) => Promise<unknown>, guarded: (i: number) => Promise<unknown>) {
  const a: number[] = [];
  const b: number[] = [];
  const warmup = 20;
  for (let i = 0; i < warmup + iterations; i++) {
    const order: Array<[(i: number) => Promise<unknown>, number[]]> = i % 2 === 0 ? [[guarded, b], [plain, a]] : [[plain, a], [guarded, b]];
    for (const [run, into] of order) {
      if (gapMs > 0) await sleep(gapMs);
      const t = performance.now();
      await run(i);
      if (i >= warmup) into.push(performance.now() - t);
    }
  }
  const diffs = b.map((x, i) => x - a[i]!).sort((x, y) => x - y);
  return { a: a.sort((x, y) => x - y), b: b.sort((x, y) => x - y), diffs };
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

function aiModel() {
  let step = 0;
  return new MockLanguageModelV4({
    doGenerate: async () =>
      ++step % 2 === 1
        ? { content: [{ type: 'tool-call', toolCallId: `c${step}`, toolName: 'echo', input: JSON.stringify({ n: step }) }], finishReason: { unified: 'tool-calls', raw: undefined }, usage, warnings: [] }
        : { content: [{ type: 'text', text: 'done' }], finishReason: { unified: 'stop', raw: undefined }, usage, warnings: [] },
  });
}

class Scripted implements Model {
  step = 0;
  async getResponse(): Promise<ModelResponse> {
    this.step += 1;
    return this.step % 2 === 1
      ? { usage: new Usage(), output: [{ type: 'function_call', callId: `c${this.step}`, name: 'echo', arguments: JSON.stringify({ n: this.step }), status: 'completed' }] }
      : { usage: new Usage(), output: [{ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'done' }] }] };
  }
  async *getStreamedResponse(): AsyncIterable<never> {
    throw new Error('not used');
  }
}

const pairs: Array<[string, (i: number) => Promise<unknown>, (i: number) => Promise<unknown>]> = [];

pairs.push([
  'floor: one POST /v1/actions (one durable decision, no outcome)',
  async (i) => i,
  async (i) => awaited.submit({ kind: 'tool.call', resource: 'staging', payload: { n: i } }),
]);

pairs.push([
  'floor: POST /v1/actions + POST outcome, awaited',
  async (i) => i,
  async (i) => {
    const s = await awaited.submit({ kind: 'tool.call', resource: 'staging', payload: { n: i } });
    return awaited.reportOutcome(s.id, { status: 'succeeded' });
  },
]);

for (const [tag, client] of [['awaited report', awaited], ['background report', background]] as const) {
  pairs.push([
    `guard (${tag})`,
    async (i) => ((n: number) => n)(i),
    async (i) => client.guard('tool.call', 'staging', { n: i }, () => i),
  ]);

  {
    const plain = { echo: tool({ inputSchema: schema, execute: async ({ n }) => n }) };
    const cs = countersignForAI({ client, describe });
    const guarded = cs.tools(plain);
    pairs.push([
      `ai (Vercel AI SDK) (${tag})`,
      async () => generateText({ model: aiModel(), tools: plain, prompt: 'go', stopWhen: stepCountIs(3) }),
      async () => generateText({ model: aiModel(), tools: guarded, toolApproval: cs.toolApproval, prompt: 'go', stopWhen: stepCountIs(3) }),
    ]);
  }

  {
    const cs = countersignForAgents({ client, describe });
    const runner = new Runner();
    const make = () => agentTool({ name: 'echo', description: 'echo', parameters: schema, execute: async ({ n }) => n });
    pairs.push([
      `@openai/agents (${tag})`,
      async () => runner.run(new Agent({ name: 'a', model: new Scripted(), tools: [make()] }), 'go'),
      async () => cs.run(runner, new Agent({ name: 'a', model: new Scripted(), tools: [cs.guardTool(make())] }), 'go'),
    ]);
  }

  {
    const cs = countersignCanUseTool({ client, describe });
    const signal = new AbortController().signal;
    pairs.push([
      `claude-agent-sdk canUseTool + PostToolUse (${tag})`,
      async (i) => i,
      async (i) => {
        const id = `toolu_${tag}_${i}`;
        await cs.canUseTool('echo', { n: i }, { signal, toolUseID: id });
        return cs.postToolUse({ hook_event_name: 'PostToolUse', tool_response: i }, id);
      },
    ]);
  }
}

console.log(`iterations: ${iterations} per variant, alternating; gap ${gapMs} ms; ms; overhead = guarded p50 - plain p50 (and the median paired difference)`);
console.log('adapter | plain p50 | guarded p50 | guarded p90 | guarded p99 | overhead p50 | paired p50');
for (const [name, plain, guarded] of pairs) {
  const { a, b, diffs } = await measure(plain, guarded);
  const f = (x: number) => x.toFixed(3);
  console.log(`${name} | ${f(pct(a, 50))} | ${f(pct(b, 50))} | ${f(pct(b, 90))} | ${f(pct(b, 99))} | ${f(pct(b, 50) - pct(a, 50))} | ${f(pct(diffs, 50))}`);
}
console.log(`background reports lost: ${await background.flushOutcomes()}`);
