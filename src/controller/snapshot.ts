/**
 * What the planner sees: a job, its Pods and its ledger, reduced to the facts decisions need.
 * Everything here is plain data, built once per reconcile by the shell from the informers'
 * caches and the ledger.
 */
import type { LedgerView } from '../ledger/ledger.ts';
import type { RunId } from '../run/identity.ts';

export type ConcurrencyPolicy = 'Forbid' | 'Replace';

/** The job's spec with every default applied. */
export interface JobPolicy {
  readonly schedule: string;
  readonly timeZone: string;
  readonly suspend: boolean;
  readonly concurrencyPolicy: ConcurrencyPolicy;
  readonly startingDeadlineSeconds?: number | undefined;
  readonly maxPendingSeconds?: number | undefined;
  readonly maxAttempts: number;
  readonly backoffSeconds: number;
  readonly successfulRunsHistoryLimit: number;
  readonly failedRunsHistoryLimit: number;
}

/** The controller's own bookkeeping for a job, kept in its status. */
export interface Bookkeeping {
  /** The walk for due ticks starts after this instant (creation, a schedule edit, a resume). */
  readonly scheduleAnchor?: Date | undefined;
  readonly observedSchedule?: string | undefined;
  readonly observedTimeZone?: string | undefined;
  readonly suspendedSince?: Date | undefined;
  /** The spec has been unschedulable since then. */
  readonly invalidSince?: Date | undefined;
}

export interface JobView {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly generation: number;
  readonly createdAt: Date;
  readonly deleting: boolean;
  readonly policy: JobPolicy;
  /** The value of the ssj.dev/run-now annotation, when set. */
  readonly runNowToken?: string | undefined;
  readonly bookkeeping: Bookkeeping;
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

export interface PodView {
  readonly name: string;
  readonly uid: string;
  /** The run the Pod belongs to, read from its labels and annotations; null when unreadable. */
  readonly run: RunId | null;
  readonly phase: PodPhase;
  /** Deletion has begun; the Pod may still be running until Kubernetes removes it. */
  readonly deleting: boolean;
  /** When deletion was asked for (deletionTimestamp less the grace period), when deleting. */
  readonly deletionRequestedAt?: Date | undefined;
  /** It carries the operator's tracking finalizer: it cannot leave the API server unseen. */
  readonly tracked: boolean;
  /** Scheduled to a node (spec.nodeName): only a bound Pod can run. */
  readonly bound: boolean;
  /** A DisruptionTarget condition is True: evicted, preempted, or its node is gone. */
  readonly disrupted: boolean;
  /** The DisruptionTarget condition's reason (EvictionByEvictionAPI, PreemptionByScheduler, ...). */
  readonly disruptionReason?: string | undefined;
  readonly disruptionMessage?: string | undefined;
  readonly createdAt: Date;
  readonly startedAt?: Date | undefined;
  readonly finishedAt?: Date | undefined;
  readonly reason?: string | undefined;
  readonly message?: string | undefined;
}

/** Why the job cannot be scheduled, when it cannot. */
export type SpecProblem =
  | { readonly kind: 'InvalidSchedule'; readonly message: string }
  | { readonly kind: 'InvalidTimeZone'; readonly message: string }
  | { readonly kind: 'InvalidTemplate'; readonly message: string };

export interface Snapshot {
  readonly job: JobView;
  readonly pods: readonly PodView[];
  readonly ledger: LedgerView;
  /** False while the ledger cannot be reached: nothing new is claimed. */
  readonly ledgerAvailable: boolean;
  /**
   * Pods of unfinished runs that the shell looked for, found in neither the cache nor its own
   * writes, and a live read confirmed do not exist. A tracked Pod cannot vanish unseen, so a
   * claimed run's absent Pod was never created, and an absent Pod of a created run was
   * removed by someone who took the operator's finalizer off.
   */
  readonly absent?: ReadonlySet<string> | undefined;
  /** The API server refuses this job's Pods (quota, ServiceAccount, Pod Security), since `since`. */
  readonly createRefusal?: CreateRefusal | undefined;
}

export interface CreateRefusal {
  readonly message: string;
  readonly since: Date;
  /** Found by this reconcile's own reads (a dry-run, a live read): still to be reported. */
  readonly fresh?: boolean | undefined;
}

/** How long a claimed run whose create is refused waits, without startingDeadlineSeconds. */
export const DEFAULT_CREATE_DEADLINE_SECONDS = 300;

export function isTerminal(phase: PodPhase): boolean {
  return phase === 'Succeeded' || phase === 'Failed';
}
