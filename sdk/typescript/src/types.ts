// The gateway's API shapes, as far as this client reads them.

export interface Action {
  kind: string;
  resource: string;
  payload?: unknown;
  on_behalf_of?: string;
  justification?: string;
  labels?: string[];
  context?: Record<string, unknown>;
}

export interface Requirement {
  policy: string;
  groups: string[];
  quorum: number;
  approvals?: unknown;
}

export interface Submitted {
  id: string;
  /** `approved` only when `reuseOpen` answered with an earlier approved request. */
  status: 'allowed' | 'denied' | 'pending' | 'approved';
  fingerprint: string;
  reason: string;
  policies: string[];
  policy_hash?: string;
  approval?: { requirements: Requirement[]; expires_at?: string };
  /** `true` when `reuseOpen` answered with this caller's earlier open request for the same action. */
  reused?: boolean;
}

export interface Entry {
  by: string;
  at: string;
  comment?: string;
}

export type Status =
  | 'allowed'
  | 'denied'
  | 'pending'
  | 'approved'
  | 'released'
  | 'expired'
  | 'cancelled'
  | 'revoked';

export interface ActionView {
  id: string;
  status: Status;
  reason: string;
  fingerprint: string;
  requester: string;
  kind: string;
  resource: string;
  payload: unknown;
  policies: string[];
  requirements: Requirement[];
  approvals: Entry[];
  denials: Entry[];
  comments: Entry[];
  expires_at?: string;
  outcome?: unknown;
}

export interface Outcome {
  status: 'succeeded' | 'failed';
  exit_code?: number;
  summary?: string;
  output_sha256?: string;
}
