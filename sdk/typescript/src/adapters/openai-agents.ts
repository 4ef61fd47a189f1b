// OpenAI Agents SDK for JS (`@openai/agents`): guarded tools always need
// approval (`needsApproval`), and `run` resolves the run's interruptions
// through countersign: allowed or approved → `state.approve(item)`, the tool
// runs under the released request and its outcome is reported; denied,
// expired, revoked, pending past `waitMs` or gateway unreachable →
// `state.reject(item, { message })`, the message the model reads.
//
//   const cs = countersignForAgents({ describe });
//   const agent = new Agent({ name, model, tools: [cs.guardTool(myTool)] });
//   const result = await cs.run(new Runner(), agent, 'do it');

import { CountersignClient } from '../client.ts';
import { describeToolCall, Ledger, runReported, verdict, type AdapterOptions } from './common.ts';

interface FunctionToolLike {
  type: 'function';
  name: string;
  invoke: (runContext: any, input: string, details?: any) => Promise<unknown>;
  needsApproval: (...args: any[]) => Promise<boolean>;
}

interface InterruptionLike {
  name?: string;
  arguments?: string;
  rawItem: { callId?: string; id?: string };
}

interface ResultLike {
  interruptions?: InterruptionLike[];
  state: { approve(item: any): void; reject(item: any, options?: { message?: string }): void };
}

interface RunnerLike<R extends ResultLike> {
  run(agent: any, input: any, options?: any): Promise<R>;
}

export function countersignForAgents(options: AdapterOptions = {}) {
  const client = options.client ?? new CountersignClient();
  const describe = options.describe ?? describeToolCall;
  const waitMs = options.waitMs ?? 30_000;
  const ledger = new Ledger();

  /** A copy of `tool` that always interrupts for approval and runs only under a granted request. */
  function guardTool<T extends FunctionToolLike>(tool: T): T {
    return {
      ...tool,
      needsApproval: async () => true,
      invoke: (runContext: unknown, input: string, details?: { toolCall?: { callId?: string } }) => {
        const requestId = ledger.take(details?.toolCall?.callId ?? '');
        return runReported(client, requestId, () => tool.invoke(runContext, input, details));
      },
    };
  }

  /** Decides every interruption of `result` and approves or rejects it on `result.state`. */
  async function resolve(result: ResultLike): Promise<void> {
    for (const item of result.interruptions ?? []) {
      const callId = item.rawItem.callId ?? item.rawItem.id ?? '';
      let input: unknown;
      try {
        input = JSON.parse(item.arguments ?? '{}');
      } catch {
        result.state.reject(item, { message: 'countersign cannot read the arguments of this call; the call was not made' });
        continue;
      }
      const v = await verdict(client, describe(item.name ?? '', input), waitMs);
      if (v.run) {
        ledger.grant(callId, v.requestId);
        result.state.approve(item);
      } else {
        result.state.reject(item, { message: v.message });
      }
    }
  }

  /** `runner.run`, resolving interruptions through countersign until the run ends. */
  async function run<R extends ResultLike>(runner: RunnerLike<R>, agent: unknown, input: unknown, runOptions?: unknown): Promise<R> {
    let result = await runner.run(agent, input, runOptions);
    for (let rounds = 0; result.interruptions?.length; rounds++) {
      if (rounds >= 100) throw new Error('countersign: more than 100 rounds of interruptions');
      await resolve(result);
      result = await runner.run(agent, result.state, runOptions);
    }
    return result;
  }

  return { guardTool, resolve, run, client };
}
