// Vercel AI SDK: generateText with MockLanguageModelV4 (ai/test) calling a
// tool, countersign as `toolApproval`; what the model sees is read from the
// prompt of its second call.
import { test } from 'node:test';

import { generateText, stepCountIs, tool } from 'ai';
import { MockLanguageModelV4 } from 'ai/test';
import { z } from 'zod';

import { countersignForAI } from '../src/adapters/ai.ts';
import { describe, runTool, scenario, type Harness, type ToolName } from './support.ts';

const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 1, text: 1, reasoning: 0 },
};

const harness: Harness = {
  async call(client, name: ToolName, input) {
    const cs = countersignForAI({ client, describe, waitMs: 20_000 });
    let seen = '';
    let step = 0;
    const model = new MockLanguageModelV4({
      doGenerate: async (options) => {
        step += 1;
        if (step === 1) {
          return {
            content: [{ type: 'tool-call', toolCallId: 'call-1', toolName: name, input: JSON.stringify(input) }],
            finishReason: { unified: 'tool-calls', raw: undefined },
            usage,
            warnings: [],
          };
        }
        seen = JSON.stringify(options.prompt.filter((m) => m.role === 'tool'));
        return { content: [{ type: 'text', text: 'done' }], finishReason: { unified: 'stop', raw: undefined }, usage, warnings: [] };
      },
    });
    const schema = z.object({ id: z.string() });
    const tools = cs.tools({
      echo: tool({ inputSchema: schema, execute: async (i) => runTool('echo', i) }),
      restart: tool({ inputSchema: schema, execute: async (i) => runTool('restart', i) }),
      drop: tool({ inputSchema: schema, execute: async (i) => runTool('drop', i) }),
    });
    await generateText({ model, tools, toolApproval: cs.toolApproval, prompt: 'go', stopWhen: stepCountIs(3) });
    return seen;
  },
};

test('ai (Vercel AI SDK): the shared scenario', async () => {
  await scenario(harness);
});
