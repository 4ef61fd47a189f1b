// OpenAI Agents SDK for JS: an Agent with a scripted Model (the SDK's
// `Model` interface, no network) calling a guarded tool; interruptions are
// approved or rejected through countersign. What the model sees is read
// from the input of its second call.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Agent, Runner, Usage, setTracingDisabled, tool, type Model, type ModelRequest, type ModelResponse } from '@openai/agents';
import { z } from 'zod';

import { countersignForAgents } from '../src/adapters/openai-agents.ts';
import { agent, describe, runTool, scenario, type Harness, type ToolName } from './support.ts';

setTracingDisabled(true);

class ScriptedModel implements Model {
  step = 0;
  seen = '';
  readonly toolName: string;
  readonly input: unknown;
  constructor(toolName: string, input: unknown) {
    this.toolName = toolName;
    this.input = input;
  }
  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    this.step += 1;
    if (this.step === 1) {
      return {
        usage: new Usage(),
        output: [{ type: 'function_call', callId: 'call-1', name: this.toolName, arguments: JSON.stringify(this.input), status: 'completed' }],
      };
    }
    const items = Array.isArray(request.input) ? request.input : [];
    this.seen = JSON.stringify(items.filter((i: { type?: string }) => i.type === 'function_call_result'));
    return {
      usage: new Usage(),
      output: [{ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'done' }] }],
    };
  }
  // eslint-disable-next-line require-yield
  async *getStreamedResponse(): AsyncIterable<never> {
    throw new Error('not used');
  }
}

/** How many times the adapter ran the agent (1 + one resumed run per round of interruptions). */
let runsOfTheAgent = 0;

const harness: Harness = {
  async call(client, name: ToolName, input) {
    runsOfTheAgent = 0;
    const cs = countersignForAgents({ client, describe, waitMs: 20_000 });
    const model = new ScriptedModel(name, input);
    const schema = z.object({ id: z.string() });
    const tools = (['echo', 'restart', 'drop'] as const).map((n) =>
      cs.guardTool(tool({ name: n, description: `the ${n} tool`, parameters: schema, execute: async (i) => runTool(n, i) })),
    );
    const agent = new Agent({ name: 'ops', instructions: 'use the tools', model, tools });
    const runner = new Runner();
    const counting = { run: (a: unknown, i: unknown, o?: unknown) => ((runsOfTheAgent += 1), runner.run(a as Agent, i as string, o as undefined)) };
    const result = await cs.run(counting, agent, 'go');
    if (result.finalOutput !== 'done') throw new Error(`the run did not finish: ${String(result.finalOutput)}`);
    return model.seen;
  },
};

test('@openai/agents: the shared scenario', async () => {
  await scenario(harness);
});

test('@openai/agents: an allowed call runs without interrupting the run', async () => {
  const seen = await harness.call(agent(), 'echo', { id: 'no-interruption' });
  assert.match(seen, /echo ran for no-interruption/);
  assert.equal(runsOfTheAgent, 1, 'allowed in `needsApproval`: no interruption, no resumed run');
  await harness.call(agent(), 'drop', { id: 'interrupted' });
  assert.equal(runsOfTheAgent, 2, 'a refusal is answered through an interruption');
});
