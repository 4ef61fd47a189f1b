// OpenAI Agents SDK for JS (`@openai/agents`): a guarded tool's
// `needsApproval` submits the call. Allowed: no approval is needed, and the
// tool runs at once under that request (no interruption, no resumed run).
// Anything else interrupts the run, and `run` resolves the interruptions
// through countersign: approved → `state.approve(item)`, the tool runs under
// the released request and its outcome is reported; denied, expired,
// revoked, pending past `waitMs` or gateway unreachable →
// `state.reject(item, { message })`, the message the model reads.
//
//   const cs = countersignForAgents({ describe });
//   const agent = new Agent({ name, model, tools: [cs.guardTool(myTool)] });
//   const result = await cs.run(new Runner(), agent, 'do it');

import { CountersignClient, deniedMessage } from '../client.ts';
import type { Action, Submitted } from '../types.ts';
import { describeToolCall, Ledger, runReported, verdict, type AdapterOptions, type Verdict } from './common.ts';

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
  // Calls `needsApproval` submitted and countersign did not allow, by call
  // id: `resolve` decides the same action (the input as the tool will run
  // it), so a pending call is waited on as the request already filed, and a
  // denial is answered without being submitted (and recorded) again.
  const submissions = new Map<string, { action: Action; answer?: Submitted }>();

  /**
   * Submits the call: `false` (no approval needed) only when countersign
   * allowed it, and the call is then granted its request. Everything else,
   * an unreachable gateway included, interrupts the run for `resolve`.
   */
  async function submitted(name: string, input: unknown, callId: string | undefined): Promise<boolean> {
    if (callId === undefined || ledger.has(callId)) return true;
    const action = describe(name, input);
    let answer: Submitted;
    try {
      answer = await client.submit(action, { reuseOpen: true });
    } catch {
      submissions.set(callId, { action });
      return true;
    }
    if (answer.status === 'allowed') {
      ledger.grant(callId, answer.id);
      return false;
    }
    submissions.set(callId, { action, answer });
    return true;
  }

  /** A copy of `tool` that runs only under a request countersign allowed or released. */
  function guardTool<T extends FunctionToolLike>(tool: T): T {
    return {
      ...tool,
      needsApproval: async (_runContext: unknown, input: unknown, callId?: string) => submitted(tool.name, input, callId),
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
      const submission = submissions.get(callId);
      submissions.delete(callId);
      let action: Action;
      if (submission) {
        action = submission.action;
      } else {
        try {
          action = describe(item.name ?? '', JSON.parse(item.arguments ?? '{}'));
        } catch {
          result.state.reject(item, { message: 'countersign cannot read the arguments of this call; the call was not made' });
          continue;
        }
      }
      const denial = submission?.answer?.status === 'denied' ? submission.answer : undefined;
      const v: Verdict = denial
        ? { run: false, message: `${deniedMessage(action, denial)}; the call was not made` }
        : await verdict(client, action, waitMs);
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
