/**
 * The ScheduledSingletonJob API as TypeScript: the types (generated from the CRD schema in
 * schema.ts, see typegen.ts) and the API's names. Import API types from here, never from
 * types.generated.ts, so the generated file can be reshaped freely.
 *
 * An object read from the API server has every schema default applied; one built in code has
 * not: pass its spec through `withDefaults` (defaults.ts) to get a `DefaultedScheduledSingletonJobSpec`.
 */
import type { V1ListMeta } from '@kubernetes/client-node';
import type { Condition, ScheduledSingletonJob } from './types.generated.ts';

export type {
  ActiveRun,
  ConcurrencyPolicy,
  Condition,
  DefaultedRetryPolicy,
  DefaultedScheduledSingletonJobSpec,
  LedgerClaim,
  LedgerStatus,
  Outcome,
  RetryPolicy,
  RunRecord,
  ScheduledSingletonJob,
  ScheduledSingletonJobSpec,
  ScheduledSingletonJobStatus,
} from './types.generated.ts';
export * from './names.ts';

export type ConditionStatus = Condition['status'];

/** What a list call for the resource returns. */
export interface ScheduledSingletonJobList {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ListMeta;
  items: ScheduledSingletonJob[];
}
