// The countersign HTTP client and `guard`: submit an action, wait for the
// pushed decision, take the single-use release, run, report the outcome.

import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';

import {
  ApiError,
  CancelledError,
  CountersignError,
  DeniedError,
  ExpiredError,
  PendingError,
  RevokedError,
  UnreachableError,
} from './errors.ts';
import type { Action, ActionView, Outcome, Submitted } from './types.ts';

export interface ClientOptions {
  /** Gateway URL; default `COUNTERSIGN_SERVER` or http://127.0.0.1:8470. */
  server?: string;
  /** Agent key (or user token); default `COUNTERSIGN_TOKEN`. */
  token?: string;
  /** Per-call timeout for calls that do not wait, in ms (default 30 000). */
  timeoutMs?: number;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
  /**
   * Send outcome reports in the background (default true): `guard` and the
   * adapters return as soon as the action has run, and the report follows
   * (retried while the gateway is unreachable, for 30 s). `flushOutcomes()`
   * waits for them; see `reportOutcomeLater`.
   */
  backgroundReports?: boolean;
  /** Told of each report given up (default: `console.error`). */
  onReportLost?: (lost: LostReport) => void;
}

/** An outcome report the gateway never recorded. */
export interface LostReport {
  id: string;
  outcome: Outcome;
  error: unknown;
}

/** How long a background report is retried while the gateway cannot take it. */
const REPORT_RETRY_MS = 30_000;

export interface GuardOptions {
  justification?: string;
  labels?: string[];
  context?: Record<string, unknown>;
  onBehalfOf?: string;
  /** Stop waiting for a pending decision after this many ms (default: until the request's deadline). */
  waitMs?: number;
  /** Cancels the wait (and the pending request). */
  signal?: AbortSignal;
  /** Called once when the action is held for approval. */
  onPending?: (submitted: Submitted) => void;
}

/** What a `DeniedError` says: which action, which policies, why, which request. */
export function deniedMessage(action: Action, submitted: Submitted): string {
  const policies = submitted.policies.length ? ` (policy ${submitted.policies.join(', ')})` : '';
  return `countersign denied ${action.kind} on ${action.resource}${policies}: ${submitted.reason} (request ${submitted.id})`;
}

/** What `decide` found: run under this request, or an error to throw. */
export type Decided = { runAs: string; via: 'allowed' | 'released' };

const LONG_POLL_SECONDS = 30;
/** The largest answer read from the gateway; a larger one is an error, not parsed. */
export const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

async function readBounded(response: Response): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > MAX_ANSWER_BYTES) {
    await response.body?.cancel().catch(() => undefined);
    throw new CountersignError(`the gateway's answer is larger than ${MAX_ANSWER_BYTES} bytes; nothing was run`);
  }
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > MAX_ANSWER_BYTES) {
      await reader.cancel().catch(() => undefined);
      throw new CountersignError(`the gateway's answer is larger than ${MAX_ANSWER_BYTES} bytes; nothing was run`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export class CountersignClient {
  readonly server: string;
  #token: string;
  #timeoutMs: number;
  #fetch: typeof fetch;
  #inFlight = new Set<Promise<void>>();
  #onReportLost: (lost: LostReport) => void;
  /** Whether `guard` and the adapters report outcomes in the background. */
  readonly backgroundReports: boolean;
  /** Reports given up: refused by the gateway, or unreachable past the retry window. */
  readonly undelivered: LostReport[] = [];

  constructor(options: ClientOptions = {}) {
    const env = typeof process !== 'undefined' ? process.env : {};
    this.server = (options.server ?? env['COUNTERSIGN_SERVER'] ?? 'http://127.0.0.1:8470').replace(/\/+$/, '');
    const token = options.token ?? env['COUNTERSIGN_TOKEN'];
    if (!token) throw new CountersignError('no API token: pass `token` or set COUNTERSIGN_TOKEN');
    if (!/^https?:\/\//.test(this.server)) throw new CountersignError(`\`${this.server}\` is not a gateway URL`);
    this.#token = token;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.backgroundReports = options.backgroundReports ?? true;
    this.#onReportLost =
      options.onReportLost ??
      ((lost) => console.error(`countersign: the outcome of request ${lost.id} was not recorded: ${String(lost.error)}`));
  }

  /**
   * Reports an outcome without the caller waiting. The report is retried
   * while the gateway is unreachable (30 s); one it refuses, or still
   * unsent then, goes to `undelivered` and `onReportLost`, never silently.
   * A pending report keeps Node's event loop alive, so a process that ends
   * by running out of work sends it first; one that calls `process.exit()`
   * or is killed loses what is still queued (the gateway then shows the
   * request without an outcome). `flushOutcomes()` before exiting.
   */
  reportOutcomeLater(id: string, outcome: Outcome): void {
    const sending = this.#sendReport(id, outcome);
    this.#inFlight.add(sending);
    void sending.finally(() => this.#inFlight.delete(sending));
  }

  /** Waits for every background report; resolves with how many were lost so far. */
  async flushOutcomes(): Promise<number> {
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
    return this.undelivered.length;
  }

  async #sendReport(id: string, outcome: Outcome): Promise<void> {
    const started = Date.now();
    let backoff = 100;
    for (;;) {
      try {
        await this.reportOutcome(id, outcome);
        return;
      } catch (error) {
        if (error instanceof UnreachableError && Date.now() - started < REPORT_RETRY_MS) {
          await new Promise((resolve) => setTimeout(resolve, backoff));
          backoff = Math.min(backoff * 2, 5_000);
          continue;
        }
        const lost = { id, outcome, error };
        this.undelivered.push(lost);
        try {
          this.#onReportLost(lost);
        } catch {
          // A caller's callback must not turn a lost report into a crash here.
        }
        return;
      }
    }
  }

  /** Reports in the background or awaited, as `backgroundReports` says; never throws. */
  async reportAfterRun(id: string, outcome: Outcome): Promise<void> {
    if (this.backgroundReports) {
      this.reportOutcomeLater(id, outcome);
      return;
    }
    await this.#sendReport(id, outcome);
  }

  async #call<T>(method: string, path: string, body?: unknown, timeoutMs?: number, signal?: AbortSignal): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs ?? this.#timeoutMs);
    const init: RequestInit = {
      method,
      headers: { authorization: `Bearer ${this.#token}`, 'content-type': 'application/json' },
      signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
    };
    if (body !== undefined) init.body = JSON.stringify(body);
    let response: Response;
    let text: string;
    try {
      response = await this.#fetch(`${this.server}${path}`, init);
      text = await readBounded(response);
    } catch (e) {
      if (e instanceof CountersignError) throw e;
      if (signal?.aborted) throw new CancelledError('the caller stopped waiting');
      const detail = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
      throw new UnreachableError(`cannot reach the gateway at ${this.server}: ${detail}`);
    }
    let document: any = null;
    try {
      document = text ? JSON.parse(text) : null;
    } catch {
      document = null;
    }
    if (!response.ok) {
      const code = document?.error?.code ?? `http_${response.status}`;
      const message = document?.error?.message ?? `HTTP ${response.status}`;
      if (response.status >= 502 && response.status <= 504) {
        throw new UnreachableError(`the gateway at ${this.server} is unavailable: ${code}: ${message}`);
      }
      throw new ApiError(response.status, code, message);
    }
    if (document === null) throw new CountersignError(`unexpected answer from the gateway for ${method} ${path}`);
    return document as T;
  }

  /**
   * `POST /v1/actions`. With `reuseOpen` (`?reuse=open`), the gateway answers
   * with this caller's open request for the exact same action (same
   * fingerprint; `reused: true`, status `pending` or `approved`) instead of
   * storing a new one.
   */
  submit(action: Action, options: { reuseOpen?: boolean } = {}): Promise<Submitted> {
    return this.#call('POST', options.reuseOpen ? '/v1/actions?reuse=open' : '/v1/actions', action);
  }

  get(id: string, waitSeconds = 0, signal?: AbortSignal): Promise<ActionView> {
    const wait = waitSeconds > 0 ? `?wait=${Math.min(60, Math.floor(waitSeconds))}` : '';
    return this.#call('GET', `/v1/actions/${encodeURIComponent(id)}${wait}`, undefined, (waitSeconds + 15) * 1000, signal);
  }

  list(query: { status?: string; kind?: string; resource?: string; limit?: number } = {}): Promise<{ actions: ActionView[] }> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
    return this.#call('GET', `/v1/actions?${params}`);
  }

  release(id: string): Promise<ActionView> {
    return this.#call('POST', `/v1/actions/${encodeURIComponent(id)}/release`, {});
  }

  cancel(id: string): Promise<ActionView> {
    return this.#call('POST', `/v1/actions/${encodeURIComponent(id)}/cancel`, {});
  }

  reportOutcome(id: string, outcome: Outcome): Promise<ActionView> {
    return this.#call('POST', `/v1/actions/${encodeURIComponent(id)}/outcome`, outcome);
  }

  approve(id: string, comment?: string): Promise<ActionView> {
    return this.#call('POST', `/v1/actions/${encodeURIComponent(id)}/approve`, { comment });
  }

  deny(id: string, comment?: string): Promise<ActionView> {
    return this.#call('POST', `/v1/actions/${encodeURIComponent(id)}/deny`, { comment });
  }

  /** Long-polls while pending, up to `waitMs` (default: no limit but the request's own deadline). */
  async waitForDecision(id: string, waitMs?: number, signal?: AbortSignal): Promise<ActionView> {
    const started = Date.now();
    for (;;) {
      const left = waitMs === undefined ? LONG_POLL_SECONDS * 1000 : waitMs - (Date.now() - started);
      const seconds = Math.max(0, Math.min(LONG_POLL_SECONDS, Math.floor(left / 1000)));
      const view = await this.get(id, seconds, signal);
      if (view.status !== 'pending') return view;
      if (waitMs !== undefined && seconds === 0) return view;
    }
  }

  /**
   * Gets `action` decided: resolves with the request to run under, or throws
   * a typed error. A pending action is waited on; once approved it is
   * released (single use) and the released payload is checked against the
   * submitted one.
   */
  async decide(action: Action, options: GuardOptions = {}): Promise<Decided> {
    try {
      return await this.#decide(action, options, true);
    } catch (e) {
      // An identical call released the shared request first: this call is
      // another run of the action and needs a request of its own.
      if (e instanceof TakenByAnother) return this.#decide(action, options, false);
      throw e;
    }
  }

  async #decide(action: Action, options: GuardOptions, reuseOpen: boolean): Promise<Decided> {
    const submitted = await this.submit(action, { reuseOpen });
    switch (submitted.status) {
      case 'allowed':
        return { runAs: submitted.id, via: 'allowed' };
      case 'denied':
        throw new DeniedError(deniedMessage(action, submitted), submitted.id, submitted.policies);
      case 'pending':
      case 'approved':
        break;
      default:
        throw new CountersignError(`unexpected status \`${String((submitted as Submitted).status)}\``, submitted.id);
    }
    let view: Pick<ActionView, 'id' | 'status' | 'reason' | 'denials' | 'policies'> = { ...submitted, denials: [] };
    if (submitted.status === 'pending') {
      options.onPending?.(submitted);
      try {
        view = await this.waitForDecision(submitted.id, options.waitMs, options.signal);
      } catch (e) {
        if (e instanceof CancelledError) {
          // A reused request is left open: another identical call may be waiting on it.
          if (submitted.reused) throw new CancelledError(`the caller stopped waiting for request ${submitted.id}`, submitted.id);
          await this.cancel(submitted.id).catch(() => undefined);
          throw new CancelledError(`request ${submitted.id} was cancelled: the caller stopped waiting`, submitted.id);
        }
        throw e;
      }
    }
    closed(view);
    const released = await this.release(submitted.id).catch((e: unknown) => {
      if (submitted.reused && e instanceof ApiError && e.code === 'already_released') throw new TakenByAnother();
      if (e instanceof ApiError && ['expired', 'revoked', 'cancelled'].includes(e.code)) {
        closed({ ...view, status: e.code as ActionView['status'], reason: e.message });
      }
      throw e;
    });
    if (released.status !== 'released') closed(released);
    // Compared as JSON, the form the gateway saw (undefined fields dropped).
    const sent: unknown = JSON.parse(JSON.stringify(action.payload ?? {}));
    if (released.fingerprint !== submitted.fingerprint || !isDeepStrictEqual(released.payload, sent)) {
      throw new CountersignError(`the released request ${released.id} does not carry the submitted action; not running`, released.id);
    }
    return { runAs: released.id, via: 'released' };
  }

  /**
   * Runs `fn` only once countersign allows or approves the action; reports
   * the outcome (a SHA-256 of the JSON result, or the error) and returns the
   * result. Denied, expired, revoked, cancelled or unreachable: throws, and
   * `fn` never runs.
   */
  async guard<T>(kind: string, resource: string, payload: unknown, fn: () => T | Promise<T>, options: GuardOptions = {}): Promise<T> {
    const action: Action = { kind, resource, payload: payload ?? {} };
    if (options.justification !== undefined) action.justification = options.justification;
    if (options.labels !== undefined) action.labels = options.labels;
    if (options.context !== undefined) action.context = options.context;
    if (options.onBehalfOf !== undefined) action.on_behalf_of = options.onBehalfOf;
    const { runAs } = await this.decide(action, options);
    let result: T;
    try {
      result = await fn();
    } catch (e) {
      const summary = (e instanceof Error ? e.message : String(e)).slice(0, 500);
      await this.reportAfterRun(runAs, { status: 'failed', summary });
      throw e;
    }
    const output = JSON.stringify(result ?? null) ?? 'null';
    await this.reportAfterRun(runAs, {
      status: 'succeeded',
      output_sha256: createHash('sha256').update(output).digest('hex'),
    });
    return result;
  }
}

/** Throws the typed error for a request that did not end approved. */
function closed(view: Pick<ActionView, 'id' | 'status' | 'reason' | 'denials' | 'policies'>): void {
  const reason = view.reason ? `: ${view.reason}` : '';
  switch (view.status) {
    case 'approved':
    case 'released':
    case 'allowed':
      return;
    case 'denied': {
      const by = (view.denials ?? []).map((d) => (d.comment ? `${d.by} (${d.comment})` : d.by));
      const who = by.length ? ` by ${by.join(', ')}` : '';
      throw new DeniedError(`request ${view.id} was denied${who}${reason}`, view.id, view.policies ?? [], by);
    }
    case 'expired':
      throw new ExpiredError(`request ${view.id} expired${reason}`, view.id);
    case 'revoked':
      throw new RevokedError(`request ${view.id} was revoked${reason}`, view.id);
    case 'cancelled':
      throw new CancelledError(`request ${view.id} was cancelled${reason}`, view.id);
    case 'pending':
      throw new PendingError(`pending approval ${view.id}, ask again after it is approved`, view.id);
  }
}

/** A reused request that an identical call released first. */
class TakenByAnother extends Error {}

let shared: CountersignClient | undefined;

/** `guard` with a client built from COUNTERSIGN_SERVER / COUNTERSIGN_TOKEN. */
export function guard<T>(kind: string, resource: string, payload: unknown, fn: () => T | Promise<T>, options?: GuardOptions): Promise<T> {
  shared ??= new CountersignClient();
  return shared.guard(kind, resource, payload, fn, options);
}
