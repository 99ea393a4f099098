/**
 * The reconciler: one job key in, effects out, and when to look again.
 *
 * It gathers what the planner needs (the job and its Pods from the informers' caches, overlaid
 * with this process's own writes; the ledger; a live read of every unfinished run's Pod that
 * neither shows; a dry-run of the template once per generation), asks `plan` what to do, and
 * hands the actions to an Execution (./execute.ts), which runs them in the claim protocol's
 * order.
 *
 * Guarantees, beyond plan's and Execution's:
 * - Records come from what was seen: a create response, a live read, or the cache; a run's Pod
 *   that the cache does not show is never assumed gone without a live read saying so.
 * - After its own status write the reconciler works from what it wrote (./own-writes.ts), so a
 *   409 Conflict on the next write means another writer.
 * - Pods labelled with a job's name but not owned by it (the job was deleted, or re-created
 *   under the same name) have the tracking finalizer removed, once a live read confirms that
 *   their owner is gone; so neither a job's nor a namespace's deletion waits on the operator.
 *
 * Not guaranteed: a refusal of the job's Pods is remembered by this process only; a restarted
 * process learns it again from its first create or dry-run.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { ScheduledSingletonJob } from '../api/types.ts';
import type { Fence, JobRef, Ledger, LedgerView } from '../ledger/ledger.ts';
import { LedgerUnavailableError } from '../ledger/ledger.ts';
import { viewFromStatus } from '../ledger/status-ledger.ts';
import { podName as podNameOf, type RunId } from '../run/identity.ts';
import type { ScheduleCache } from '../schedule/index.ts';
import { Execution } from './execute.ts';
import type { FaultHook } from './faults.ts';
import { jobView, templateOf } from './job.ts';
import { OwnWrites } from './own-writes.ts';
import { plan as realPlan, type Plan, type PlanInput } from './plan.ts';
import { buildPod, isOwnedBy, isTracked, podView } from './pod.ts';
import type { EventSink, JobCache, JobHealth, KubeWriter, PodCache, ReconcileObserver } from './ports.ts';
import type { CreateRefusal, JobView, SpecProblem } from './snapshot.ts';
import { periodsSinceSuccess } from './status.ts';
import type { ScheduledSingletonJobStatus } from '../api/types.ts';
import type { Schedule } from '../schedule/index.ts';
import type { Lane } from '../runtime/queue.ts';

export type { EventSink, JobCache, KubeWriter, PodCache, ReconcileObserver } from './ports.ts';
export { StatusConflictError } from './ports.ts';
export { jobView } from './job.ts';

export interface TransitionLog {
  info(fields: Readonly<Record<string, unknown>>, message: string): void;
}

/** While the API server refuses a job's Pods, it is looked at again this often. */
export const REFUSAL_RECHECK_MS = 10_000;

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
  /** A line per run transition once it is committed (claim, create, start, outcome, not run). */
  readonly log?: TransitionLog | undefined;
  /** The planner; tests substitute deliberately broken ones to prove the checkers can fail. */
  readonly plan?: ((input: PlanInput) => Plan) | undefined;
}

export interface ReconcileResult {
  readonly requeueAfterMs?: number;
  readonly lane?: Lane;
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
  private readonly own = new OwnWrites();
  /** The API server's latest refusal of each job's Pods, by job UID. */
  private readonly refusals = new Map<string, CreateRefusal>();

  constructor(deps: ReconcilerDeps) {
    this.deps = deps;
  }

  /**
   * The job as the cache shows it is the one this term's latest status write of it returned: the
   * watch event brings nothing the reconcile that wrote it did not plan from, so it needs no
   * reconcile of its own (that reconcile asked for its next look itself).
   */
  isOwnEcho(job: ScheduledSingletonJob): boolean {
    return this.own.echoed(job);
  }

  forget(uid: string): void {
    this.templateVerdicts.delete(uid);
    this.own.forget(uid);
    this.refusals.delete(uid);
  }

  async reconcile(key: string, signal?: AbortSignal): Promise<ReconcileResult> {
    const { namespace, name } = parseKey(key);
    const d = this.deps;
    const fence = d.fence();
    if (fence === undefined) return {}; // not the leader
    const cached = d.jobs.get(namespace, name);
    if (cached === undefined) {
      d.observer?.jobHealth({ namespace, name }, undefined);
      await this.releaseOrphans(namespace, name, undefined);
      return {};
    }
    const job = this.own.job(cached);
    const jobRef: JobRef = { namespace, name, uid: job.metadata?.uid ?? '' };
    const view = jobView(job);
    await this.releaseOrphans(namespace, name, jobRef.uid);

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

    for (const run of ledger.runs) if (run.state === 'Finished') this.own.runEnded(jobRef.uid, run.podName);
    const cachedPods = d.pods.forJob(namespace, name).filter((p) => isOwnedBy(p, jobRef.uid));
    const { pods, absent } = await this.observePods(jobRef, ledger, this.own.pods(jobRef.uid, cachedPods));
    const podViews = pods.map(podView);

    const now = d.now();
    const parsed = d.schedules.parse(view.policy.schedule, view.policy.timeZone);
    const templateProblem = view.deleting ? undefined : await this.templateProblem(job, view, fence);
    const refusal = this.refusals.get(jobRef.uid);
    const result = (d.plan ?? realPlan)({
      snapshot: { job: view, pods: podViews, ledger, ledgerAvailable, absent, createRefusal: refusal },
      schedule: parsed.ok ? { ok: true, schedule: parsed.schedule } : { ok: false, problem: parsed.error },
      templateProblem,
      now,
    });

    const outcome = await new Execution(
      d,
      job,
      jobRef,
      fence,
      result,
      { ledgerAvailable, pods, podViews, refusal },
      signal,
      (before, after) => {
        this.own.wroteJob(before, after);
      },
    ).run();
    // A reconcile that created Pods is a tick's: its follow-up, in the normal lane, reports the
    // job's health (a count of periods since the last success) once every due Pod exists.
    if (outcome.created.length === 0) {
      d.observer?.jobHealth(
        jobRef,
        healthOf(view, parsed.ok ? parsed.schedule : undefined, result, outcome.status, now),
      );
    }
    if (outcome.refusal === undefined) this.refusals.delete(jobRef.uid);
    else this.refusals.set(jobRef.uid, outcome.refusal);
    for (const pod of outcome.created) this.own.createdPod(jobRef.uid, pod);
    // The record of new Pods (and the cleanup the plan had) waits for a fresh reconcile in the
    // normal lane, which runs once every job due now has had its claim and create.
    if (outcome.created.length > 0) return { requeueAfterMs: 0, lane: 'normal' };
    return this.requeue(result, d.now(), outcome.refusal !== undefined);
  }

  private requeue(result: Plan, now: Date, refused: boolean): ReconcileResult {
    const at = result.requeueAt?.getTime();
    const afterMs = at === undefined ? undefined : Math.max(0, at - now.getTime());
    if (refused) return { requeueAfterMs: Math.min(afterMs ?? REFUSAL_RECHECK_MS, REFUSAL_RECHECK_MS) };
    if (afterMs === undefined) return {};
    // Woken for the next tick (not for an earlier deadline): the claim and create of that tick
    // are due work, handed out before any record, Event or cleanup (docs/adr/0012-tick-lane.md).
    const next = result.nextTick?.getTime();
    const forTick = next !== undefined && at !== undefined && at >= next;
    return { requeueAfterMs: afterMs, lane: forTick ? 'due' : 'normal' };
  }

  /**
   * The job's Pods, and the unfinished runs whose Pods a live read found absent. Every
   * unfinished run's Pod that neither the cache nor this process's own creates show is read
   * live: a tracked Pod cannot vanish unseen, so only such a read can say it is not there.
   */
  private async observePods(
    job: JobRef,
    ledger: LedgerView,
    known: readonly V1Pod[],
  ): Promise<{ pods: readonly V1Pod[]; absent: ReadonlySet<string> }> {
    const names = new Set(known.map((p) => p.metadata?.name ?? ''));
    const found: V1Pod[] = [];
    const absent = new Set<string>();
    for (const run of ledger.runs) {
      if (run.state === 'Finished' || names.has(run.podName)) continue;
      const live = await this.deps.kube.getPod(job.namespace, run.podName);
      if (live !== undefined && isOwnedBy(live, job.uid)) {
        found.push(live);
        continue;
      }
      // Absent for this job: no Pod of its own holds the name.
      absent.add(run.podName);
      if (live !== undefined) {
        this.refusals.set(job.uid, {
          message: `pod name ${run.podName} is taken by a pod this job does not own`,
          since: this.refusals.get(job.uid)?.since ?? this.deps.now(),
          fresh: true,
        });
      }
    }
    return { pods: found.length === 0 ? known : [...known, ...found], absent };
  }

  /**
   * Tracked Pods labelled with the job's name whose owner is not the job of that name that
   * exists now (`uid`; undefined when the cache has none, and a live read then decides).
   */
  private async releaseOrphans(namespace: string, name: string, uid: string | undefined): Promise<void> {
    const d = this.deps;
    const tracked = d.pods.forJob(namespace, name).filter((p) => isTracked(p) && !isOwnedBy(p, uid ?? ''));
    if (tracked.length === 0) return;
    const owner = uid ?? (await d.kube.getJob(namespace, name))?.metadata?.uid;
    for (const pod of tracked) {
      if (owner !== undefined && isOwnedBy(pod, owner)) continue;
      await d.kube.removeFinalizer(namespace, pod.metadata?.name ?? '', pod.metadata?.uid ?? '', pod);
    }
  }

  private async templateProblem(
    job: ScheduledSingletonJob,
    view: JobView,
    fence: Fence,
  ): Promise<SpecProblem | undefined> {
    const kept = this.templateVerdicts.get(view.uid);
    const known = kept?.generation === view.generation ? kept : verdictOfStatus(job, view.generation);
    if (known !== undefined) {
      if (known !== kept) this.templateVerdicts.set(view.uid, known);
      return known.problem;
    }
    const probe: RunId = {
      kind: 'scheduled',
      tick: new Date(Math.floor(this.deps.now().getTime() / 1000) * 1000),
      attempt: 1,
    };
    const pod = buildPod(view, templateOf(job), probe, podNameOf(view.name, probe), fence);
    const answer = await this.deps.kube.dryRunPod(pod);
    if (answer.kind === 'ok') this.refusals.delete(view.uid);
    if (answer.kind === 'refused' && answer.reason === 'Forbidden') {
      // Not a property of the spec: a quota, a ServiceAccount or a policy can lift it at any
      // moment, so it is reported and checked again, never cached like an invalid template.
      this.refusals.set(view.uid, {
        message: answer.message,
        since: this.refusals.get(view.uid)?.since ?? this.deps.now(),
        fresh: true,
      });
      return undefined;
    }
    const problem: SpecProblem | undefined =
      answer.kind === 'ok'
        ? undefined
        : { kind: 'InvalidTemplate', message: `the API server refuses the pod template: ${answer.message}` };
    this.templateVerdicts.set(view.uid, { generation: view.generation, problem });
    return problem;
  }
}

/**
 * The template verdict that a reconcile of this generation left in the job's status, perhaps in
 * another process: every status write follows the template's check, so a Ready condition of this
 * generation that is True says the template passed, and one False for InvalidTemplate says why it
 * did not. Any other reason says nothing about the template, which is then checked again. So a
 * restart or a failover sends no dry run for a job whose spec has not changed (10,000 at 10,000
 * jobs); a template the API server has come to refuse since is reported by its create, as it
 * would be in a process that had kept running.
 */
function verdictOfStatus(
  job: ScheduledSingletonJob,
  generation: number,
): { generation: number; problem: SpecProblem | undefined } | undefined {
  const ready = job.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready === undefined || ready.observedGeneration !== generation) return undefined;
  if (job.status?.observedGeneration !== generation) return undefined;
  if (ready.status === 'True') return { generation, problem: undefined };
  if (ready.status === 'False' && ready.reason === 'InvalidTemplate')
    return { generation, problem: { kind: 'InvalidTemplate', message: ready.message } };
  return undefined;
}

/** What the per-job metrics show: nothing for a job being deleted. */
function healthOf(
  view: JobView,
  schedule: Schedule | undefined,
  result: Plan,
  status: ScheduledSingletonJobStatus | undefined,
  now: Date,
): JobHealth | undefined {
  if (view.deleting) return undefined;
  const scheduled = schedule !== undefined && result.problem === undefined && !view.policy.suspend;
  const lastSuccess = status?.lastSuccessfulTime === undefined ? NaN : Date.parse(status.lastSuccessfulTime);
  const since = Number.isNaN(lastSuccess) ? view.createdAt : new Date(lastSuccess);
  return {
    consecutiveFailures: status?.consecutiveFailures ?? 0,
    periodsSinceSuccess: scheduled ? periodsSinceSuccess(schedule, since, now) : undefined,
  };
}
