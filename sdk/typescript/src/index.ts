// countersign: the TypeScript client for the countersign approval gateway.
export { CountersignClient, guard } from './client.ts';
export type { ClientOptions, GuardOptions, Decided, LostReport } from './client.ts';
export * from './errors.ts';
export type * from './types.ts';
