// Typed errors: what a caller can catch and tell apart. Every failure to
// get a decision is an error, so nothing runs by accident (fail closed).

/** Anything that stops an action from running. */
export class CountersignError extends Error {
  readonly requestId: string | undefined;
  constructor(message: string, requestId?: string) {
    super(message);
    this.name = new.target.name;
    this.requestId = requestId;
  }
}

/** Denied by policy, or by an approver. */
export class DeniedError extends CountersignError {
  readonly policies: string[];
  readonly by: string[];
  constructor(message: string, requestId: string, policies: string[] = [], by: string[] = []) {
    super(message, requestId);
    this.policies = policies;
    this.by = by;
  }
}

/** Nobody approved in time, or the approval was not released in time. */
export class ExpiredError extends CountersignError {}

/** Revoked: the policy or the approvers changed, or the agent was revoked. */
export class RevokedError extends CountersignError {}

/** Cancelled by the requester. */
export class CancelledError extends CountersignError {}

/** Still pending when the caller stopped waiting. Ask again later. */
export class PendingError extends CountersignError {}

/** The gateway could not be reached: nothing ran. */
export class UnreachableError extends CountersignError {}

/** The gateway refused the call (`{"error": {"code", "message"}}`). */
export class ApiError extends CountersignError {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}
