// Overhead of each adapter when nothing needs approval: the same tool call
// with and without countersign, against a running gateway whose policy
// allows `tool.call` on `staging` (bench/run.sh sets one up). The overhead
// includes the gateway's durable decision (the audit event is fsynced
// before the answer) and the outcome report.
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
const client = new CountersignClient({ server, token });
const describe = (_: string, input: unknown): Action => ({ kind: 'tool.call', resource: 'staging', payload: input ?? {} });
const schema = z.object({ n: z.number() });
const usage = { inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 1, text: 1, reasoning: 0 } };

async function measure(run: (i: number) => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 20; i++) await run(-i - 1); // warm-up
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    await run(i);
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b);
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
  async (i) => client.submit({ kind: 'tool.call', resource: 'staging', payload: { n: i } }),
]);

pairs.push([
  'guard',
  async (i) => ((n: number) => n)(i),
  async (i) => client.guard('tool.call', 'staging', { n: i }, () => i),
]);

{
  const plain = { echo: tool({ inputSchema: schema, execute: async ({ n }) => n }) };
  const cs = countersignForAI({ client, describe });
  const guarded = cs.tools(plain);
  pairs.push([
    'ai (Vercel AI SDK)',
    async () => generateText({ model: aiModel(), tools: plain, prompt: 'go', stopWhen: stepCountIs(3) }),
    async () => generateText({ model: aiModel(), tools: guarded, toolApproval: cs.toolApproval, prompt: 'go', stopWhen: stepCountIs(3) }),
  ]);
}

{
  const cs = countersignForAgents({ client, describe });
  const runner = new Runner();
  const make = () => agentTool({ name: 'echo', description: 'echo', parameters: schema, execute: async ({ n }) => n });
  pairs.push([
    '@openai/agents',
    async () => runner.run(new Agent({ name: 'a', model: new Scripted(), tools: [make()] }), 'go'),
    async () => cs.run(runner, new Agent({ name: 'a', model: new Scripted(), tools: [cs.guardTool(make())] }), 'go'),
  ]);
}

{
  const cs = countersignCanUseTool({ client, describe });
  const signal = new AbortController().signal;
  pairs.push([
    'claude-agent-sdk canUseTool + PostToolUse',
    async (i) => i,
    async (i) => {
      const id = `toolu_${i}`;
      await cs.canUseTool('echo', { n: i }, { signal, toolUseID: id });
      return cs.postToolUse({ hook_event_name: 'PostToolUse', tool_response: i }, id);
    },
  ]);
}

console.log(`iterations: ${iterations} per variant; ms; overhead = guarded - plain at the same percentile`);
console.log('adapter | plain p50 | guarded p50 | guarded p90 | guarded p99 | overhead p50');
for (const [name, plain, guarded] of pairs) {
  const a = await measure(plain);
  const b = await measure(guarded);
  const f = (x: number) => x.toFixed(3);
  console.log(`${name} | ${f(pct(a, 50))} | ${f(pct(b, 50))} | ${f(pct(b, 90))} | ${f(pct(b, 99))} | ${f(pct(b, 50) - pct(a, 50))}`);
}
