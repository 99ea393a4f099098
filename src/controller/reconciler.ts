/**
 * The reconciler: one job key in, effects out, and when to look again.
 *
 * It reads the job and its Pods from the informers' caches and the ledger, asks `plan` what to
 * do, and executes the actions in this order:
 *   1. claims and Pod creates, in plan order (a create never runs unless the claim before it
 *      resolved; status writes never delay them, except the claim itself in status-only mode,
 *      where the claim *is* a status write);
 *   2. every other ledger write, Pod deletion, live read and Event, in plan order;
 *   3. at most one status write, with the job's resourceVersion as a precondition, and only
 *      when the summary changed.
 * Any failure stops the sequence and is returned as an error, so the work queue retries the
 * key with backoff; a retry plans again from fresh observations, and every step is idempotent
 * (claims, deterministic Pod names, monotonic ledger writes).
 */
import type { V1Pod, V1PodTemplateSpec } from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import type { ScheduledSingletonJob, ScheduledSingletonJobStatus } from '../api/types.ts';
import { ANNOTATION_RUN_NOW } from '../api/types.ts';
import { withDefaults } from '../api/defaults.ts';
import type {
  Fence,
  JobRef,
  Ledger,
  LedgerView,
  LedgerWrite,
  NotRunOutcome,
  RunOutcome,
} from '../ledger/ledger.ts';
import { LedgerUnavailableError } from '../ledger/ledger.ts';
import { viewFromStatus } from '../ledger/status-ledger.ts';
import { podName as podNameOf, type RunId } from '../run/identity.ts';
import type { ScheduleCache } from '../schedule/index.ts';
import { applyWrite, plan, type Action, type Plan } from './plan.ts';
import { buildPod, isOwnedBy, podView } from './pod.ts';
import type { Bookkeeping, JobPolicy, JobView, PodView, SpecProblem } from './snapshot.ts';
import { summarize } from './status.ts';
import type { FaultHook } from './faults.ts';

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

export interface KubeWriter {
  /** 'exists' when a Pod of that name already exists (409 AlreadyExists). */
  createPod(pod: V1Pod): Promise<'created' | 'exists'>;
  /** A live read, bypassing caches; undefined when the Pod does not exist. */
  getPod(namespace: string, name: string): Promise<V1Pod | undefined>;
  /** Deletes the Pod with that UID; resolves when it is gone or deletion has begun. */
  deletePod(namespace: string, name: string, uid: string): Promise<void>;
  /** Replaces the status subresource; throws StatusConflictError on a stale resourceVersion. */
  replaceJobStatus(job: ScheduledSingletonJob): Promise<ScheduledSingletonJob>;
  /** Server-side dry-run create; the API server's message when it refuses the Pod. */
  dryRunPod(pod: V1Pod): Promise<string | undefined>;
}

export interface EventSink {
  event(
    obj: { apiVersion: string; kind: string; metadata: { name: string; namespace: string; uid: string } },
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): void;
}

export interface ReconcileObserver {
  podCreated(job: JobRef, run: RunId, skewSeconds: number | undefined): void;
  runFinished(outcome: RunOutcome): void;
  ticksNotRun(outcome: NotRunOutcome, count: number): void;
  statusWrite(result: 'ok' | 'conflict'): void;
  ledgerAvailable(available: boolean): void;
}

export interface ReconcilerDeps {
  readonly jobs: JobCache;
  readonly pods: PodCache;
  readonly kube: KubeWriter;
  readonly ledger: Ledger;
  readonly events: EventSink;
  readonly schedules: ScheduleCache;
  readonly now: () => Date;
  /** The current leadership term, or undefined when this process does not lead. */
  readonly fence: () => Fence | undefined;
  readonly observer?: ReconcileObserver | undefined;
  /** Crash-test hook (./faults.ts); inert unless configured. */
  readonly fault?: FaultHook | undefined;
}

export interface ReconcileResult {
  readonly requeueAfterMs?: number;
}

export function parseKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

export class Reconciler {
  private readonly deps: ReconcilerDeps;
  /** The template verdict per job UID, kept until the job's generation changes. */
  private readonly templateVerdicts = new Map<
    string,
    { generation: number; problem: SpecProblem | undefined }
  >();

  constructor(deps: ReconcilerDeps) {
    this.deps = deps;
  }

  /** Pods this process created whose record has not reached the ledger yet, per job UID. */
  private readonly recentlyCreated = new Map<string, Set<string>>();

  forget(uid: string): void {
    this.templateVerdicts.delete(uid);
    this.recentlyCreated.delete(uid);
  }

  async reconcile(key: string, signal?: AbortSignal): Promise<ReconcileResult> {
    const { namespace, name } = parseKey(key);
    const d = this.deps;
    const cached = d.jobs.get(namespace, name);
    if (cached === undefined) return {}; // deleted: its Pods go with it through owner references
    const fence = d.fence();
    if (fence === undefined) return {}; // not the leader

    const jobRef: JobRef = { namespace, name, uid: cached.metadata?.uid ?? '' };
    const job = cached;
    const view = jobView(job);
    const pods = d.pods.forJob(namespace, name).filter((p) => isOwnedBy(p, jobRef.uid));
    const podViews = pods.map(podView);

    let ledgerAvailable = true;
    let ledger: LedgerView;
    try {
      ledger = await d.ledger.load(jobRef, job.status);
    } catch (err) {
      if (!(err instanceof LedgerUnavailableError)) throw err;
      ledgerAvailable = false;
      ledger = viewFromStatus(job.status);
    }
    d.observer?.ledgerAvailable(ledgerAvailable);
    const recentlyCreated = this.recentlyCreatedFor(jobRef.uid, ledger);

    const now = d.now();
    const parsed = d.schedules.parse(view.policy.schedule, view.policy.timeZone);
    const templateProblem = view.deleting ? undefined : await this.templateProblem(job, view, fence);
    const result = plan({
      snapshot: { job: view, pods: podViews, ledger, ledgerAvailable, recentlyCreated },
      schedule: parsed.ok ? { ok: true, schedule: parsed.schedule } : { ok: false, problem: parsed.error },
      templateProblem,
      now,
    });

    const created = await new Execution(
      d,
      job,
      jobRef,
      fence,
      result,
      ledgerAvailable,
      pods,
      podViews,
      signal,
    ).run();
    if (created.length > 0) {
      let names = this.recentlyCreated.get(jobRef.uid);
      if (names === undefined) this.recentlyCreated.set(jobRef.uid, (names = new Set()));
      for (const name of created) names.add(name);
      // The record of the new Pods waits for a fresh reconcile, queued behind the other jobs
      // due now, so that status writes never delay their Pods.
      return { requeueAfterMs: 0 };
    }
    return this.requeue(result, d.now());
  }

  private requeue(result: Plan, now: Date): ReconcileResult {
    if (result.requeueAt === undefined) return {};
    return { requeueAfterMs: Math.max(0, result.requeueAt.getTime() - now.getTime()) };
  }

  /** Forgets created Pods the ledger now records, and returns the rest. */
  private recentlyCreatedFor(uid: string, ledger: LedgerView): ReadonlySet<string> | undefined {
    const names = this.recentlyCreated.get(uid);
    if (names === undefined) return undefined;
    for (const name of names) {
      const run = ledger.runs.find((r) => r.podName === name);
      if (run === undefined || run.state !== 'Claimed') names.delete(name);
    }
    if (names.size === 0) this.recentlyCreated.delete(uid);
    return names;
  }

  private async templateProblem(
    job: ScheduledSingletonJob,
    view: JobView,
    fence: Fence,
  ): Promise<SpecProblem | undefined> {
    const known = this.templateVerdicts.get(view.uid);
    if (known !== undefined && known.generation === view.generation) return known.problem;
    const probe: RunId = {
      kind: 'scheduled',
      tick: new Date(Math.floor(this.deps.now().getTime() / 1000) * 1000),
      attempt: 1,
    };
    const pod = buildPod(view, templateOf(job), probe, podNameOf(view.name, probe), fence);
    const message = await this.deps.kube.dryRunPod(pod);
    const problem: SpecProblem | undefined =
      message === undefined
        ? undefined
        : { kind: 'InvalidTemplate', message: `the API server refuses the pod template: ${message}` };
    this.templateVerdicts.set(view.uid, { generation: view.generation, problem });
    return problem;
  }
}

/** One reconcile's effects, executed in the order the module comment states. */
class Execution {
  private readonly d: ReconcilerDeps;
  private job: ScheduledSingletonJob;
  private readonly ref: JobRef;
  private readonly fence: Fence;
  private readonly result: Plan;
  private readonly ledgerAvailable: boolean;
  private readonly pods: readonly V1Pod[];
  private readonly podViews: readonly PodView[];
  private readonly signal: AbortSignal | undefined;
  private ledger: LedgerView;
  private readonly createdThisRun = new Set<string>();
  /** Claims the ledger already held as finished runs: their Pods are not created again. */
  private readonly finishedClaims = new Set<string>();

  constructor(
    d: ReconcilerDeps,
    job: ScheduledSingletonJob,
    ref: JobRef,
    fence: Fence,
    result: Plan,
    ledgerAvailable: boolean,
    pods: readonly V1Pod[],
    podViews: readonly PodView[],
    signal: AbortSignal | undefined,
  ) {
    this.d = d;
    this.job = job;
    this.ref = ref;
    this.fence = fence;
    this.result = result;
    this.ledgerAvailable = ledgerAvailable;
    this.pods = pods;
    this.podViews = podViews;
    this.signal = signal;
    this.ledger = result.ledger;
  }

  /** Runs the plan; resolves to the names of the Pods it created. */
  async run(): Promise<string[]> {
    if (!this.ledgerAvailable) {
      // Nothing is decided while the ledger is down: no claim, no outcome, no deletion. The
      // Pods stay as the evidence the next reconcile re-derives outcomes from; the status only
      // says why (Ready=False, LedgerUnavailable).
      this.ledger = viewFromStatus(this.job.status);
      await this.writeStatus(false);
      return [];
    }
    const { actions } = this.result;
    const postgres = this.d.ledger.mode === 'postgres';
    // With PostgreSQL, the records of ticks before the claimed one go first: a crash after the
    // claim must not lose them (the walk moves past them once the claim is in).
    const early = (a: Action): boolean =>
      isClaimOrCreate(a) || (postgres && a.kind === 'ledger' && a.write.kind === 'notRun');
    // In status-only mode a Pod is created only after a status write of this very reconcile
    // passed its resourceVersion precondition: the claim, or, for an earlier claim, a write
    // that proves the view it was planned from is current.
    let statusCurrent = postgres;
    for (const action of actions.filter(early)) {
      this.checkLeading();
      if (!statusCurrent && (action.kind === 'ledger' || action.kind === 'createPod')) {
        await this.writeStatus(true);
        statusCurrent = true;
        if (action.kind === 'ledger') {
          this.d.fault?.('after-claim');
          continue;
        }
      } else if (!postgres && action.kind === 'ledger') {
        continue; // already in the status just written
      }
      await this.execute(action);
      if (action.kind === 'ledger' && action.write.kind === 'claim') this.d.fault?.('after-claim');
      if (action.kind === 'createPod') this.d.fault?.('after-create');
    }
    for (const action of actions.filter((a) => !early(a))) {
      this.checkLeading();
      await this.execute(action);
    }
    if (this.createdThisRun.size === 0) await this.writeStatus(false);
    return [...this.createdThisRun];
  }

  private checkLeading(): void {
    if (this.signal?.aborted === true) throw new Error('leadership lost: reconcile abandoned');
  }

  private async execute(action: Action): Promise<void> {
    const d = this.d;
    switch (action.kind) {
      case 'ledger': {
        if (!this.ledgerAvailable && action.write.kind !== 'claim') return; // re-derived when it returns
        const result = await d.ledger.write(this.ref, this.fence, action.write);
        if (action.write.kind === 'claim' && result === 'finished')
          this.finishedClaims.add(action.write.podName);
        this.observeWrite(action.write);
        return;
      }
      case 'createPod': {
        if (this.finishedClaims.has(action.podName)) return;
        if (await this.anotherPodMayRun(action.podName)) return;
        const pod = buildPod(this.ref, templateOf(this.job), action.run, action.podName, this.fence);
        const outcome = await d.kube.createPod(pod);
        const skew =
          action.run.kind === 'scheduled'
            ? (d.now().getTime() - action.run.tick.getTime()) / 1000
            : undefined;
        this.createdThisRun.add(action.podName);
        if (outcome === 'created') {
          d.observer?.podCreated(this.ref, action.run, skew);
          this.event('Normal', 'RunCreated', `created pod ${action.podName}`);
        }
        // 'exists': an earlier attempt to create this very run's Pod got there; it is adopted.
        return;
      }
      case 'deletePod':
        await d.kube.deletePod(this.ref.namespace, action.podName, action.uid);
        return;
      case 'confirmLost': {
        if (this.createdThisRun.has(action.podName)) return;
        const live = await d.kube.getPod(this.ref.namespace, action.podName);
        if (live !== undefined) return; // the cache is behind; the Pod event will bring us back
        const write: LedgerWrite = {
          kind: 'finished',
          run: action.run,
          outcome: 'Lost',
          reason: 'PodDeleted',
          message: `pod ${action.podName} disappeared before it finished`,
          at: d.now(),
        };
        if (this.ledgerAvailable) await d.ledger.write(this.ref, this.fence, write);
        this.ledger = applyWrite(this.ledger, write);
        this.observeWrite(write);
        this.event('Warning', 'RunLost', write.message);
        return;
      }
      case 'event':
        this.event(action.type, action.reason, action.message);
        return;
      default: {
        const never: never = action;
        throw new Error(`unknown action ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * The cache may not show a Pod that still runs: one a crashed reconcile created, or a
   * replaced one not seen yet. Before a create, the runs whose Pods might live are read live
   * (a run that ended Succeeded, Failed or Lost has no live Pod, so a quiet job costs no read).
   * A stopped run's live Pod is deleted; any live Pod defers the create.
   */
  private async anotherPodMayRun(podName: string): Promise<boolean> {
    for (const run of this.ledger.runs) {
      if (run.podName === podName) continue;
      if (run.outcome === 'Succeeded' || run.outcome === 'Failed' || run.outcome === 'Lost') continue;
      const cached = this.pods.find((p) => p.metadata?.name === run.podName);
      if (cached !== undefined && isTerminalPod(cached)) continue;
      const live = await this.d.kube.getPod(this.ref.namespace, run.podName);
      if (live === undefined || isTerminalPod(live)) continue;
      if (run.state === 'Finished' && live.metadata?.deletionTimestamp === undefined) {
        await this.d.kube.deletePod(this.ref.namespace, run.podName, live.metadata?.uid ?? '');
      }
      return true;
    }
    return false;
  }

  private observeWrite(write: LedgerWrite): void {
    if (write.kind === 'finished') this.d.observer?.runFinished(write.outcome);
    if (write.kind === 'notRun') this.d.observer?.ticksNotRun(write.record.outcome, write.record.count);
  }

  private event(type: 'Normal' | 'Warning', reason: string, message: string): void {
    const meta = this.job.metadata ?? {};
    this.d.events.event(
      {
        apiVersion: this.job.apiVersion ?? 'ssj.dev/v1alpha1',
        kind: this.job.kind ?? 'ScheduledSingletonJob',
        metadata: { name: meta.name ?? '', namespace: meta.namespace ?? '', uid: meta.uid ?? '' },
      },
      type,
      reason,
      message,
    );
  }

  /** `force` writes even an unchanged status: the write's precondition is the point. */
  private async writeStatus(force: boolean): Promise<void> {
    const status = summarize({
      job: jobView(this.job),
      prior: this.job.status,
      // While the ledger is down the bookkeeping stays as it was: a resume or an edit is
      // committed with the records it implies, not before them.
      plan: {
        ...this.result,
        ledger: this.ledger,
        ...(this.ledgerAvailable ? {} : { bookkeeping: jobView(this.job).bookkeeping }),
      },
      pods: this.podViews,
      ledgerAvailable: this.ledgerAvailable,
      epoch: this.fence.epoch,
      now: this.d.now(),
    });
    if (!force && isDeepStrictEqual(normalize(status), normalize(this.job.status))) return;
    try {
      this.job = await this.d.kube.replaceJobStatus({ ...this.job, status });
      this.d.observer?.statusWrite('ok');
    } catch (err) {
      // A failed write ends the reconcile; after a failed claim no Pod is created.
      if (err instanceof StatusConflictError) this.d.observer?.statusWrite('conflict');
      throw err;
    }
  }
}

function isTerminalPod(pod: V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

function isClaimOrCreate(a: Action): boolean {
  return a.kind === 'createPod' || (a.kind === 'ledger' && a.write.kind === 'claim');
}

function normalize(status: ScheduledSingletonJobStatus | undefined): unknown {
  return JSON.parse(JSON.stringify(status ?? {})) as unknown;
}

function templateOf(job: ScheduledSingletonJob): V1PodTemplateSpec {
  return job.spec.template;
}

function date(s: string | Date | undefined): Date | undefined {
  if (s === undefined) return undefined;
  const d = s instanceof Date ? s : new Date(s);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export function jobView(job: ScheduledSingletonJob): JobView {
  const meta = job.metadata ?? {};
  const spec = withDefaults(job.spec);
  const policy: JobPolicy = {
    schedule: spec.schedule,
    timeZone: spec.timeZone,
    suspend: spec.suspend,
    concurrencyPolicy: spec.concurrencyPolicy,
    startingDeadlineSeconds: spec.startingDeadlineSeconds,
    maxPendingSeconds: spec.maxPendingSeconds,
    maxAttempts: spec.retry.maxAttempts,
    backoffSeconds: spec.retry.backoffSeconds,
    successfulRunsHistoryLimit: spec.successfulRunsHistoryLimit,
    failedRunsHistoryLimit: spec.failedRunsHistoryLimit,
  };
  const l = job.status?.ledger;
  const bookkeeping: Bookkeeping = {
    scheduleAnchor: date(l?.scheduleAnchor),
    observedSchedule: l?.observedSchedule,
    observedTimeZone: l?.observedTimeZone,
    suspendedSince: date(l?.suspendedSince),
    invalidSince: date(l?.invalidSince),
  };
  return {
    namespace: meta.namespace ?? '',
    name: meta.name ?? '',
    uid: meta.uid ?? '',
    generation: meta.generation ?? 0,
    createdAt: date(meta.creationTimestamp) ?? new Date(0),
    deleting: meta.deletionTimestamp !== undefined,
    policy,
    runNowToken: meta.annotations?.[ANNOTATION_RUN_NOW],
    bookkeeping,
  };
}
