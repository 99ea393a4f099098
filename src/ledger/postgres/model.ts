// The shapes the PostgreSQL ledger reads and writes. Plain data, no behaviour: the common
// ledger interface (src/ledger/ledger.ts) can re-export or map them.

export type RunState = 'Claimed' | 'Pending' | 'Running' | 'Finished';
export type RunOutcome = 'Succeeded' | 'Failed' | 'Lost' | 'TimedOut' | 'Replaced';
export type TickNotRunOutcome = 'Skipped' | 'Missed';
export type RunKind = 'scheduled' | 'manual';

export const RUN_STATES: readonly RunState[] = ['Claimed', 'Pending', 'Running', 'Finished'];
export const RUN_OUTCOMES: readonly RunOutcome[] = ['Succeeded', 'Failed', 'Lost', 'TimedOut', 'Replaced'];
export const TICK_NOT_RUN_OUTCOMES: readonly TickNotRunOutcome[] = ['Skipped', 'Missed'];

/** The leader Lease a fence row belongs to; a recreated Lease has a new uid. */
export interface LeaseRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/** What every ledger write carries: the writer's leadership term on one Lease. */
export interface Fence {
  readonly lease: LeaseRef;
  /** The Lease's leaseTransitions when this holder acquired it. */
  readonly term: number;
  /** The leader's identity (unique per process). */
  readonly holder: string;
}

/** A run's identity (DESIGN.md, "A run's identity"). A tick is a whole second. */
export type RunIdentity =
  | { readonly kind: 'scheduled'; readonly jobUid: string; readonly tick: Date; readonly attempt: number }
  | {
      readonly kind: 'manual';
      readonly jobUid: string;
      readonly manualToken: string;
      readonly attempt: number;
    };

/** What a claim records besides the identity. */
export type RunClaim = RunIdentity & {
  readonly namespace: string;
  readonly jobName: string;
  readonly podName: string;
};

interface RunRowBase {
  readonly runKey: string;
  readonly jobUid: string;
  readonly namespace: string;
  readonly jobName: string;
  readonly attempt: number;
  readonly podName: string;
  readonly state: RunState;
  /** Null until the run is Finished; set once, never overwritten. */
  readonly outcome: RunOutcome | null;
  readonly reason: string | null;
  readonly message: string | null;
  /** The claiming leader's identity and term (what the Pod's annotations carry). */
  readonly holder: string;
  readonly term: number;
  readonly claimedAt: Date;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
  readonly updatedAt: Date;
  /** The identity and term of the last write to this row. */
  readonly updatedHolder: string;
  readonly updatedTerm: number;
}

export type RunRow =
  | (RunRowBase & { readonly kind: 'scheduled'; readonly tick: Date })
  | (RunRowBase & { readonly kind: 'manual'; readonly manualToken: string });

export interface RunStateUpdate {
  readonly state: RunState;
  /** Required when state is Finished, refused otherwise. */
  readonly outcome?: RunOutcome;
  readonly reason?: string;
  readonly message?: string;
  /** Kept only if the row has none yet (the first observed start wins). */
  readonly startedAt?: Date;
  /** Used when state is Finished; defaults to the database's clock. */
  readonly finishedAt?: Date;
}

export interface TicksNotRunRecord {
  readonly jobUid: string;
  readonly namespace: string;
  readonly jobName: string;
  readonly outcome: TickNotRunOutcome;
  readonly firstTick: Date;
  readonly lastTick: Date;
  /** How many ticks the range [firstTick, lastTick] holds; 1 exactly when firstTick = lastTick. */
  readonly count: number;
  readonly reason: string;
  readonly message: string;
}

export interface TicksNotRunRow extends TicksNotRunRecord {
  readonly holder: string;
  readonly term: number;
  readonly recordedAt: Date;
  readonly updatedAt: Date;
}

/** What the controller reads of a job (store.loadJobs). */
export interface LoadedJob {
  readonly runs: readonly RunRow[];
  readonly ticksNotRun: readonly TicksNotRunRow[];
  readonly latestTick: Date | null;
}

export type ClaimResult =
  { readonly claimed: true; readonly row: RunRow } | { readonly claimed: false; readonly row: RunRow };

export type RunStateResult =
  { readonly applied: true; readonly row: RunRow } | { readonly applied: false; readonly row: RunRow };

/** recorded: a new row; extended: an existing range grew; unchanged: already recorded. */
export type TicksNotRunResult = {
  readonly result: 'recorded' | 'extended' | 'unchanged';
  readonly row: TicksNotRunRow;
};

export interface RetentionResult {
  readonly runsDeleted: number;
  readonly ticksNotRunDeleted: number;
}
