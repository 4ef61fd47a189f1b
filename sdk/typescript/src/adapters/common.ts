// What every adapter shares: describing a tool call as an action, getting
// it decided, and remembering which request a call runs under so its
// outcome is reported against it.

import { createHash } from 'node:crypto';

import { CountersignClient } from '../client.ts';
import { CountersignError } from '../errors.ts';
import type { Action } from '../types.ts';

/** Describes a tool call as the action countersign decides on. */
export type Describe = (toolName: string, input: unknown) => Action;

/** Default: kind `tool.call` (listed by no starter policy: it waits for approval), resource the tool's name. */
export const describeToolCall: Describe = (toolName, input) => ({
  kind: 'tool.call',
  resource: toolName.toLowerCase(),
  payload: input ?? {},
});

export interface AdapterOptions {
  client?: CountersignClient;
  describe?: Describe;
  /** How long a call may wait for approval before the model is told it is pending (default 30 000 ms). */
  waitMs?: number;
}

export type Verdict = { run: true; requestId: string } | { run: false; message: string };

/** Decides one tool call; every failure, unreachable gateway included, is a refusal. */
export async function verdict(client: CountersignClient, action: Action, waitMs: number): Promise<Verdict> {
  try {
    const decided = await client.decide(action, { waitMs });
    return { run: true, requestId: decided.runAs };
  } catch (e) {
    const message = e instanceof CountersignError ? e.message : `countersign could not decide: ${String(e)}`;
    return { run: false, message: `${message}; the call was not made` };
  }
}

/** Which request each approved tool call runs under, by call id. */
export class Ledger {
  #byCall = new Map<string, string>();

  has(callId: string): boolean {
    return this.#byCall.has(callId);
  }

  grant(callId: string, requestId: string): void {
    this.#byCall.set(callId, requestId);
  }

  /** The request a call may run under, once: a call countersign did not approve never runs. */
  take(callId: string): string {
    const id = this.#byCall.get(callId);
    if (id === undefined) throw new CountersignError(`tool call ${callId} was not approved by countersign; not running it`);
    this.#byCall.delete(callId);
    return id;
  }
}

/** Runs `fn` under `requestId` and reports how it went. */
export async function runReported<T>(client: CountersignClient, requestId: string, fn: () => T | Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    const summary = (e instanceof Error ? e.message : String(e)).slice(0, 500);
    await client.reportAfterRun(requestId, { status: 'failed', summary });
    throw e;
  }
  const digest = createHash('sha256').update(JSON.stringify(result ?? null) ?? 'null').digest('hex');
  await client.reportAfterRun(requestId, { status: 'succeeded', output_sha256: digest });
  return result;
}
