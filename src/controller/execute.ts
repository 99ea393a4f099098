/**
 * One reconcile's effects: the actions of a plan, executed in the order of the claim protocol.
 *
 *   1. claims and Pod creates, in plan order (with PostgreSQL, every ledger write of the plan
 *      with them, so an outcome the plan's claim depends on is durable before it). A create
 *      never runs unless the claim before it resolved; in status-only mode a create always follows a status write of this very
 *      reconcile that passed its resourceVersion precondition (the claim, or a write proving
 *      that the view an earlier claim was planned from is current).
 *   2. every other ledger write and Event, in plan order;
 *   3. at most one status write;
 *   4. Pod deletions and finalizer releases, only once the outcomes they follow are durable:
 *      after the ledger writes of step 2 with PostgreSQL, after the status write of step 3 in
 *      status-only mode. A Pod deleted before its run's record (TimedOut, Replaced) would read,
 *      should that record fail, as a Pod stopped from outside: Lost.
 *
 * When Pods were created, steps 3 and 4 are left to a follow-up reconcile in the work queue's
 * normal lane, which plans them again: nothing but claims, creates and (held) Events runs while
 * ticks are due (docs/adr/0012-tick-lane.md).
 *
 * A failure stops the sequence and is thrown, so the work queue retries the key with backoff;
 * a retry plans again from fresh observations, and every step is idempotent (claims,
 * deterministic Pod names, monotonic ledger writes, finalizer removal by UID).
 *
 * Answers that are part of the protocol are not failures: a Pod the API server refuses is
 * reported (a Warning Event, `Ready=False` with reason CreateRefused) and the rest of the
 * plan goes on; a refusal by the fencing admission policy ends the reconcile (FenceRefusalError).
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { ScheduledSingletonJob, ScheduledSingletonJobStatus } from '../api/types.ts';
import type { Fence, JobRef, LedgerView, LedgerWrite } from '../ledger/ledger.ts';
import { viewFromStatus } from '../ledger/status-ledger.ts';
import { runOfPod, buildPod, isOwnedBy } from './pod.ts';
import type { Action, Plan } from './plan.ts';
import type { CreateResult } from './ports.ts';
import { FenceRefusalError, FinalizerRefusedError, StatusConflictError } from './ports.ts';
import type { ReconcilerDeps } from './reconciler.ts';
import { jobView, templateOf } from './job.ts';
import type { CreateRefusal, PodView } from './snapshot.ts';
import { statusChanged, summarize } from './status.ts';
import { runKey } from '../run/identity.ts';

export interface ExecutionResult {
  /** The create responses (or adopted live Pods) of the Pods this reconcile created. */
  readonly created: readonly V1Pod[];
  /** The refusal to report from now on; undefined once a create went through. */
  readonly refusal: CreateRefusal | undefined;
  /** The job's status as this reconcile leaves it: the last one written, or the one it found. */
  readonly status: ScheduledSingletonJobStatus | undefined;
}

export class Execution {
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
  private refusal: CreateRefusal | undefined;
  private readonly created: V1Pod[] = [];
  /** A status write of this reconcile passed its resourceVersion precondition. */
  private wroteStatus = false;
  /** Transitions already logged by this reconcile. */
  private readonly logged = new Set<LedgerWrite>();
  /** Claims the ledger already held as finished runs: their Pods are not created again. */
  private readonly finishedClaims = new Set<string>();
  private readonly onWrite: (before: ScheduledSingletonJob, after: ScheduledSingletonJob) => void;

  constructor(
    d: ReconcilerDeps,
    job: ScheduledSingletonJob,
    ref: JobRef,
    fence: Fence,
    result: Plan,
    observed: {
      readonly ledgerAvailable: boolean;
      readonly pods: readonly V1Pod[];
      readonly podViews: readonly PodView[];
      readonly refusal: CreateRefusal | undefined;
    },
    signal: AbortSignal | undefined,
    onWrite: (before: ScheduledSingletonJob, after: ScheduledSingletonJob) => void,
  ) {
    this.d = d;
    this.job = job;
    this.ref = ref;
    this.fence = fence;
    this.result = result;
    this.ledgerAvailable = observed.ledgerAvailable;
    this.pods = observed.pods;
    this.podViews = observed.podViews;
    this.refusal = observed.refusal;
    this.signal = signal;
    this.ledger = result.ledger;
    this.onWrite = onWrite;
  }

  async run(): Promise<ExecutionResult> {
    if (!this.ledgerAvailable) {
      // Nothing is decided while the ledger is down: no claim, no outcome, no deletion. The
      // Pods stay as the evidence the next reconcile re-derives outcomes from; the status only
      // says why (Ready=False, LedgerUnavailable).
      this.ledger = viewFromStatus(this.job.status);
      await this.writeStatus(false);
      return this.outcome();
    }
    if (this.refusal?.fresh === true) {
      this.refusal = { message: this.refusal.message, since: this.refusal.since };
      this.event('Warning', 'CreateRefused', this.refusal.message);
    }
    const { actions } = this.result;
    const postgres = this.d.ledger.mode === 'postgres';
    const isRelease = (a: Action): boolean => a.kind === 'releasePod' || a.kind === 'deletePod';
    // With PostgreSQL, every ledger write goes in plan order with the claims: the records of
    // ticks before a claimed one (the walk moves past them once the claim is in), and the
    // outcome of a run that lets the claim happen (a run Replaced, a claim refused past its
    // deadline), so that a crash after the claim never leaves that run open to run late.
    const early = (a: Action): boolean => isClaimOrCreate(a) || (postgres && a.kind === 'ledger');
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
    // Events go to the recorder, which holds them while ticks are due; in status-only mode these
    // ledger writes are already in the status just written (nothing is sent).
    for (const action of actions.filter((a) => !early(a) && !isRelease(a))) {
      this.checkLeading();
      await this.execute(action);
    }
    // The tick's work is done: the record of its Pods and the cleanup are planned again by the
    // follow-up reconcile.
    if (this.created.length > 0) return this.outcome();
    const releases = actions.filter(isRelease);
    if (postgres) await this.executeAll(releases);
    // In status-only mode the job's status is the ledger: deletions and releases planned from it
    // follow a write that passed its resourceVersion precondition, so a stale cache (a claim
    // it does not show yet) can never release or delete a Pod of a run it does not know.
    await this.writeStatus(!postgres && releases.length > 0 && !this.wroteStatus);
    if (!postgres) await this.executeAll(releases);
    return this.outcome();
  }

  private outcome(): ExecutionResult {
    return { created: this.created, refusal: this.refusal, status: this.job.status };
  }

  private async executeAll(actions: readonly Action[]): Promise<void> {
    for (const action of actions) {
      this.checkLeading();
      await this.execute(action);
    }
  }

  /** The local fence, before every side effect: the term still runs and is within its deadline. */
  private checkLeading(): void {
    if (this.signal?.aborted === true || this.d.fence() === undefined)
      throw new TermOverError('the leadership term is over: reconcile abandoned');
  }

  private async execute(action: Action): Promise<void> {
    this.checkLeading();
    const d = this.d;
    switch (action.kind) {
      case 'ledger': {
        const result = await this.timedLedgerWrite(action.write);
        if (action.write.kind === 'claim' && result === 'finished')
          this.finishedClaims.add(action.write.podName);
        this.observeWrite(action.write);
        this.logWrite(action.write);
        return;
      }
      case 'createPod': {
        if (this.finishedClaims.has(action.podName)) return;
        if (await this.anotherPodMayRun(action.podName)) return;
        const pod = buildPod(this.ref, templateOf(this.job), action.run, action.podName, this.fence);
        this.answer(action, await d.kube.createPod(pod));
        return;
      }
      case 'deletePod':
        await d.kube.deletePod(this.ref.namespace, action.podName, action.uid);
        return;
      case 'releasePod':
        try {
          const cached = this.pods.find((p) => p.metadata?.name === action.podName);
          await d.kube.removeFinalizer(this.ref.namespace, action.podName, action.uid, cached);
        } catch (err) {
          if (!(err instanceof FinalizerRefusedError)) throw err;
          // Reported, not retried blindly: the next reconcile of the job plans it again.
          this.event('Warning', 'FinalizerRefused', `pod ${action.podName}: ${err.message}`);
        }
        return;
      case 'event':
        this.event(action.type, action.reason, action.message);
        return;
      default: {
        const never: never = action;
        throw new Error(`unknown action ${JSON.stringify(never)}`);
      }
    }
  }

  private answer(action: Extract<Action, { kind: 'createPod' }>, answer: CreateResult): void {
    const d = this.d;
    switch (answer.kind) {
      case 'created': {
        this.created.push(answer.pod);
        this.refusal = undefined;
        const skew =
          action.run.kind === 'scheduled'
            ? (d.now().getTime() - action.run.tick.getTime()) / 1000
            : undefined;
        d.observer?.podCreated(this.ref, action.run, skew);
        this.event('Normal', 'RunCreated', `created pod ${action.podName}`);
        return;
      }
      case 'exists': {
        const pod = answer.pod;
        if (pod === undefined) return; // gone since: the next reconcile sees why
        const run = runOfPod(pod);
        if (isOwnedBy(pod, this.ref.uid) && run !== null && runKey(run) === runKey(action.run)) {
          // An earlier attempt to create this very run's Pod got there: it is adopted.
          this.created.push(pod);
          return;
        }
        this.refuse(`pod name ${action.podName} is taken by a pod that is not this run's`);
        return;
      }
      case 'refused':
        if (answer.fenced)
          throw new FenceRefusalError(`pod ${action.podName} refused by the fence: ${answer.message}`);
        this.refuse(answer.message);
        return;
      default: {
        const never: never = answer;
        throw new Error(`unknown create result ${JSON.stringify(never)}`);
      }
    }
  }

  private refuse(message: string): void {
    this.refusal = { message, since: this.refusal?.since ?? this.d.now() };
    this.event('Warning', 'CreateRefused', message);
  }

  /**
   * The cache may not show a Pod that still runs: a replaced one not seen yet. Before a
   * create, the runs whose Pods might live are read live (a run that ended Succeeded, Failed
   * or Lost has no live Pod, so a quiet job costs no read). A stopped run's live Pod is
   * deleted; any live Pod defers the create.
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

  /** One line per committed transition, with the job, the run and the term. */
  private logWrite(write: LedgerWrite): void {
    const log = this.d.log;
    if (log === undefined || this.logged.has(write)) return;
    this.logged.add(write);
    const job = `${this.ref.namespace}/${this.ref.name}`;
    const term = this.fence.term;
    if (write.kind === 'notRun') {
      const r = write.record;
      log.info(
        {
          job,
          term,
          outcome: r.outcome,
          firstTick: r.firstTick,
          lastTick: r.lastTick,
          count: r.count,
          reason: r.reason,
        },
        `ticks ${r.outcome.toLowerCase()}`,
      );
      return;
    }
    const run = write.run;
    const fields = {
      job,
      term,
      ...(run.kind === 'scheduled' ? { tick: run.tick } : { token: run.token }),
      attempt: run.attempt,
    };
    switch (write.kind) {
      case 'claim':
        log.info({ ...fields, pod: write.podName }, 'run claimed');
        return;
      case 'created':
        log.info(fields, 'run created');
        return;
      case 'started':
        log.info(fields, 'run started');
        return;
      case 'finished':
        log.info({ ...fields, outcome: write.outcome, reason: write.reason }, 'run finished');
        return;
      default: {
        const never: never = write;
        throw new Error(`unknown ledger write ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * The status-only ledger's `write` does nothing (its record is the status write, timed there),
   * so only PostgreSQL writes are timed here.
   */
  private async timedLedgerWrite(write: LedgerWrite): Promise<'ok' | 'finished'> {
    const { ledger, observer } = this.d;
    if (ledger.mode !== 'postgres' || observer === undefined)
      return ledger.write(this.ref, this.fence, write);
    const started = performance.now();
    try {
      const result = await ledger.write(this.ref, this.fence, write);
      observer.ledgerWrite('postgres', (performance.now() - started) / 1000, true);
      return result;
    } catch (err) {
      observer.ledgerWrite('postgres', (performance.now() - started) / 1000, false);
      throw err;
    }
  }

  private observeWrite(write: LedgerWrite): void {
    const observer = this.d.observer;
    if (observer === undefined) return;
    if (write.kind === 'finished') {
      const key = runKey(write.run);
      const started = this.ledger.runs.find((r) => runKey(r.id) === key)?.startedAt;
      const seconds = started === undefined ? undefined : (write.at.getTime() - started.getTime()) / 1000;
      observer.runFinished(write.outcome, seconds === undefined || seconds < 0 ? undefined : seconds);
    }
    if (write.kind === 'notRun')
      observer.ticksNotRun(write.record.outcome, write.record.reason, write.record.count);
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
    this.checkLeading();
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
      createRefusal: this.refusal,
      term: this.fence.term,
      now: this.d.now(),
    });
    if (!force && !statusChanged(status, this.job.status)) return;
    // In status-only mode every status write is a ledger write.
    const timed = this.d.ledger.mode === 'status' ? performance.now() : undefined;
    const observeLedger = (ok: boolean): void => {
      if (timed !== undefined) this.d.observer?.ledgerWrite('status', (performance.now() - timed) / 1000, ok);
    };
    try {
      const before = this.job;
      try {
        this.job = await this.d.kube.replaceJobStatus({ ...this.job, status });
      } catch (err) {
        observeLedger(false);
        throw err;
      }
      observeLedger(true);
      this.wroteStatus = true;
      // In status-only mode the status is the ledger: what it now holds is committed.
      if (this.d.ledger.mode === 'status') {
        for (const a of this.result.actions) if (a.kind === 'ledger') this.logWrite(a.write);
      }
      this.onWrite(before, this.job);
      this.d.observer?.statusWrite('ok');
    } catch (err) {
      // A failed write ends the reconcile; after a failed claim no Pod is created.
      if (err instanceof StatusConflictError) this.d.observer?.statusWrite('conflict');
      throw err;
    }
  }
}

export class TermOverError extends Error {
  override readonly name = 'TermOverError';
}

export function isTerminalPod(pod: V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

function isClaimOrCreate(a: Action): boolean {
  return a.kind === 'createPod' || (a.kind === 'ledger' && a.write.kind === 'claim');
}
