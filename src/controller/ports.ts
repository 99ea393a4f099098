/**
 * The reconciler's ports: the small interfaces through which it reads caches and acts on the
 * API server, the Event sink and its metrics. The real implementations live in the shell
 * (./kube-writer.ts, ../runtime/), the simulated ones in test/unit/controller/sim/.
 *
 * Contract of every KubeWriter call: it returns within its request timeout (a few seconds,
 * shorter than a leader's renew deadline) or throws; an answer that is part of the protocol
 * (AlreadyExists, NotFound, a refusal) is a value, anything else is thrown for the work queue
 * to retry with backoff.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { ScheduledSingletonJob } from '../api/types.ts';
import type { JobRef, Ledger, NotRunOutcome, RunOutcome } from '../ledger/ledger.ts';
import type { RunId } from '../run/identity.ts';

export interface JobCache {
  get(namespace: string, name: string): ScheduledSingletonJob | undefined;
}

export interface PodCache {
  /** Pods labelled ssj.dev/job=<jobName> in the namespace. */
  forJob(namespace: string, jobName: string): readonly V1Pod[];
}

export class StatusConflictError extends Error {
  override readonly name = 'StatusConflictError';
}

/**
 * The API server refused a Pod (403 Forbidden or 422 Invalid on a create or a dry-run):
 * quota, a missing ServiceAccount, Pod Security, a terminating namespace, an invalid template.
 * `fenced` is true when the refusal names the operator's own fencing admission policy.
 */
export interface PodRefusal {
  readonly kind: 'refused';
  readonly reason: 'Forbidden' | 'Invalid';
  readonly message: string;
  readonly fenced: boolean;
}

export type CreateResult =
  /** The create response: the Pod as the API server stored it. */
  | { readonly kind: 'created'; readonly pod: V1Pod }
  /** 409 AlreadyExists, then a live read of the Pod holding the name (undefined if gone since). */
  | { readonly kind: 'exists'; readonly pod: V1Pod | undefined }
  | PodRefusal;

export type DryRunResult = { readonly kind: 'ok' } | PodRefusal;

export interface KubeWriter {
  createPod(pod: V1Pod): Promise<CreateResult>;
  /** A live read, bypassing caches; undefined when the Pod does not exist. */
  getPod(namespace: string, name: string): Promise<V1Pod | undefined>;
  /** Deletes the Pod with that UID; resolves when it is gone or deletion has begun. */
  deletePod(namespace: string, name: string, uid: string): Promise<void>;
  /**
   * Removes the tracking finalizer (ssj.dev/run-record) from the Pod with that UID, leaving
   * any other finalizer. 'gone' when no Pod of that UID exists or it no longer has ours.
   * Throws FinalizerRefusedError when the API server refuses the patch (403, 422).
   * `cached`, the informer's copy of the Pod, saves the read before the patch: the patch tests
   * the UID and the finalizer's index, so a stale copy only costs a live read and a second try.
   */
  removeFinalizer(namespace: string, name: string, uid: string, cached?: V1Pod): Promise<'removed' | 'gone'>;
  /** A live read of a job, bypassing caches; undefined when it does not exist. */
  getJob(namespace: string, name: string): Promise<ScheduledSingletonJob | undefined>;
  /** Replaces the status subresource; throws StatusConflictError on a stale resourceVersion. */
  replaceJobStatus(job: ScheduledSingletonJob): Promise<ScheduledSingletonJob>;
  /** Server-side dry-run create. */
  dryRunPod(pod: V1Pod): Promise<DryRunResult>;
}

/**
 * A Pod create refused by the fencing admission policy. Not proof of being fenced on its own
 * (the policy reads the Lease from a cache that may lag a takeover): the term confirms itself
 * against the Lease, and stands down only when the Lease shows another holder.
 */
export class FenceRefusalError extends Error {
  override readonly name = 'FenceRefusalError';
}

export class FinalizerRefusedError extends Error {
  override readonly name = 'FinalizerRefusedError';
}

export interface EventSink {
  event(
    obj: { apiVersion: string; kind: string; metadata: { name: string; namespace: string; uid: string } },
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): void;
}

/** What the per-job metrics report of one job after a reconcile. */
export interface JobHealth {
  /** status.consecutiveFailures as it now stands. */
  readonly consecutiveFailures: number;
  /** Schedule periods since the last success (or creation); undefined while suspended or invalid. */
  readonly periodsSinceSuccess: number | undefined;
}

export interface ReconcileObserver {
  podCreated(job: JobRef, run: RunId, skewSeconds: number | undefined): void;
  /** `durationSeconds`: from the Pod's start to the recorded end; undefined if it never started. */
  runFinished(outcome: RunOutcome, durationSeconds: number | undefined): void;
  ticksNotRun(outcome: NotRunOutcome, reason: string, count: number): void;
  statusWrite(result: 'ok' | 'conflict'): void;
  ledgerAvailable(available: boolean): void;
  /** One ledger write: a PostgreSQL write, or in status-only mode a status write. */
  ledgerWrite(ledger: Ledger['mode'], seconds: number, ok: boolean): void;
  /**
   * After each reconcile of a job but one that created Pods (its follow-up reports it: a tick's
   * Pods come first); undefined once the job is gone or being deleted.
   */
  jobHealth(job: { readonly namespace: string; readonly name: string }, health: JobHealth | undefined): void;
}
