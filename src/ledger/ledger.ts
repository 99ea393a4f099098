/**
 * The idempotency ledger: what the controller knows about a job's runs, whatever stores it.
 *
 * Contract:
 * - A run is claimed before its Pod exists. `claim` is durable when it resolves: a claim that
 *   resolved `claimed: true` is seen by every later `load`, so a controller that crashes
 *   between the claim and the Pod create finds it and finishes the same run (same Pod name).
 * - A run once claimed is never claimed again: a second `claim` of the same identity resolves
 *   `claimed: false`.
 * - A finished run's outcome is written once; later writes never change it.
 * - Every write carries the writer's leadership term (the fence); a store refuses a write from
 *   an older term by throwing `FencedError`, and says it cannot be reached by throwing
 *   `LedgerUnavailableError`, so callers can stop claiming until it returns.
 *
 * Two implementations: the job's status subresource alone (recent history only), and
 * PostgreSQL (full history with retention; status is its summary).
 */
import type { ScheduledSingletonJobStatus } from '../api/types.ts';
import type { RunId } from '../run/identity.ts';

export type RunState = 'Claimed' | 'Created' | 'Running' | 'Finished';
export type RunOutcome = 'Succeeded' | 'Failed' | 'Lost' | 'TimedOut' | 'Replaced';
export type NotRunOutcome = 'Skipped' | 'Missed';

export interface LedgerRun {
  readonly id: RunId;
  readonly podName: string;
  readonly state: RunState;
  readonly claimedAt: Date;
  /** The leadership term that claimed the run, when known. */
  readonly term?: number | undefined;
  readonly startedAt?: Date | undefined;
  readonly finishedAt?: Date | undefined;
  readonly outcome?: RunOutcome | undefined;
  readonly reason?: string | undefined;
  readonly message?: string | undefined;
}

/** Ticks that got no run: a range, so a long suspension or outage is one record. */
export interface NotRunRecord {
  readonly outcome: NotRunOutcome;
  readonly firstTick: Date;
  readonly lastTick: Date;
  readonly count: number;
  readonly reason: string;
  readonly message: string;
  readonly recordedAt: Date;
}

export interface LedgerView {
  /** Unfinished runs and the most recent finished ones, newest claim first. */
  readonly runs: readonly LedgerRun[];
  /** The most recent Skipped and Missed records, newest first. */
  readonly notRun: readonly NotRunRecord[];
  /** Run-now tokens already claimed (the most recent ones at least). */
  readonly manualTokens: readonly string[];
  /**
   * The latest tick the ledger accounts for (a run of it, or a Skipped or Missed record),
   * kept explicitly and never inferred from the bounded lists above: the walk for due ticks
   * never starts before it, however many records those lists drop.
   */
  readonly latestTick?: Date | undefined;
}

export type LedgerWrite =
  | { readonly kind: 'claim'; readonly run: RunId; readonly podName: string; readonly at: Date }
  | { readonly kind: 'created'; readonly run: RunId; readonly at: Date }
  | { readonly kind: 'started'; readonly run: RunId; readonly at: Date }
  | {
      readonly kind: 'finished';
      readonly run: RunId;
      readonly outcome: RunOutcome;
      readonly reason: string;
      readonly message: string;
      readonly at: Date;
    }
  | { readonly kind: 'notRun'; readonly record: NotRunRecord };

export interface JobRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export interface Fence {
  /** The term number: the leader Lease's leaseTransitions at acquisition, or the fence row's. */
  readonly term: number;
  readonly holder: string;
  /** The leader Lease's UID, when the term comes from a Lease (the fence row's key). */
  readonly leaseUid?: string | undefined;
}

export class FencedError extends Error {
  override readonly name = 'FencedError';
}

export class LedgerUnavailableError extends Error {
  override readonly name = 'LedgerUnavailableError';
}

export interface Ledger {
  readonly mode: 'status' | 'postgres';
  /** What the ledger knows of a job; the status-only ledger reads it from the job's status. */
  load(job: JobRef, status: ScheduledSingletonJobStatus | undefined): Promise<LedgerView>;
  /**
   * Writes one record. The status-only ledger does nothing here: its records are the status
   * the reconciler writes (its claims with the job's resourceVersion as a precondition).
   * A claim of a run the ledger already holds resolves 'finished' when that run has ended:
   * its Pod must not be created again (it may have been cleaned up since).
   */
  write(job: JobRef, fence: Fence, write: LedgerWrite): Promise<'ok' | 'finished'>;
}
