/**
 * plan: from what the controller observed about one job, and `now`, to what it must do.
 *
 * Pure: no I/O, no clock, no randomness. The shell executes the actions in order and calls
 * plan again at `requeueAt` or when anything about the job changes.
 *
 * Guarantees (given a ledger that keeps its contract, see ../ledger/ledger.ts):
 * - At most one Pod per run: a Pod is only ever created for a run that a `claim` earlier in
 *   the same action list, or an earlier reconcile, recorded; its name is a pure function of
 *   the run (../run/identity.ts).
 * - Never two live Pods of one job: no Pod is created while another Pod of the job is
 *   pending, running, in an unknown state or still terminating. A retry waits for the earlier
 *   attempt's Pod to be gone or finished; Replace waits for the replaced Pod to be gone.
 * - Each tick walked past ends in exactly one record: a claimed run, or a Skipped or Missed
 *   record. Ticks are found by walking forward from the latest tick the ledger accounts for
 *   (or the job's creation, the last schedule edit, the last resume), never backwards.
 * - Every run's Pod carries the tracking finalizer, and `releasePod` (its removal) is planned
 *   only for a run whose outcome is in the ledger: the shell executes it after that outcome is
 *   durable. So no Pod leaves the API server before its run is recorded, whoever deletes it.
 * - A run stopped from outside (deleted, evicted, its node lost) is Lost only once its Pod can
 *   no longer run: terminal, or deleted before it was bound to a node. A Pod that finished on
 *   its own before the deletion keeps its real outcome.
 * - A retry is claimed only once the earlier attempt's outcome was durable before this plan
 *   (in the loaded ledger), never in the same plan that records it.
 *
 * Not guaranteed: a Pod whose finalizer someone else removed can vanish unseen; its run is then
 * Lost if the ledger had recorded its creation, and created again under the same name if not.
 * Ticks closer together than the controller's reaction time (a seconds
 * schedule under heavy load) may be recorded Missed rather than run: a tick found overdue
 * together with a later one is treated as passed while no controller acted.
 */
import { FINALIZER_RUN_RECORD } from '../api/names.ts';
import type { LedgerRun, LedgerView, LedgerWrite, NotRunRecord, RunOutcome } from '../ledger/ledger.ts';
import { nextAttempt, podName, runKey, sameOccasion, type RunId } from '../run/identity.ts';
import type { Schedule } from '../schedule/index.ts';
import { ticksBetween } from '../schedule/index.ts';
import {
  DEFAULT_CREATE_DEADLINE_SECONDS,
  isTerminal,
  type Bookkeeping,
  type PodView,
  type Snapshot,
  type SpecProblem,
} from './snapshot.ts';

/** At most this many missed ticks are recorded one by one; the rest become one summary. */
export const MISSED_ONE_BY_ONE = 100;
/** Wake a little after a tick, never before it (timers are not exact). */
export const TICK_PADDING_MS = 20;

export type EventType = 'Normal' | 'Warning';

export type Action =
  /** Write to the ledger. A claim must succeed before the Pod that follows it is created. */
  | { readonly kind: 'ledger'; readonly write: LedgerWrite }
  | { readonly kind: 'createPod'; readonly run: RunId; readonly podName: string }
  | { readonly kind: 'deletePod'; readonly podName: string; readonly uid: string; readonly why: DeleteReason }
  /** Remove the tracking finalizer: the run's outcome is in the ledger (durable once written). */
  | { readonly kind: 'releasePod'; readonly podName: string; readonly uid: string }
  | { readonly kind: 'event'; readonly type: EventType; readonly reason: string; readonly message: string };

export type DeleteReason = 'TimedOut' | 'Replaced' | 'HistoryLimit';

export interface PlanInput {
  readonly snapshot: Snapshot;
  /** The parsed schedule, or why the spec cannot be scheduled. */
  readonly schedule:
    | { readonly ok: true; readonly schedule: Schedule }
    | { readonly ok: false; readonly problem: SpecProblem };
  /** Set when a dry-run create of the template was refused. */
  readonly templateProblem?: SpecProblem | undefined;
  readonly now: Date;
}

export interface Plan {
  readonly actions: readonly Action[];
  readonly bookkeeping: Bookkeeping;
  /** The ledger as it will be once every ledger action has been applied. */
  readonly ledger: LedgerView;
  readonly problem?: SpecProblem | undefined;
  readonly nextTick?: Date | undefined;
  readonly requeueAt?: Date | undefined;
}

export function plan(input: PlanInput): Plan {
  const { snapshot, now } = input;
  const { job } = snapshot;
  const p = new Planner(snapshot.ledger, job.bookkeeping, job.name);

  observePods(p, snapshot, now);
  if (job.deleting) {
    // Its Pods are being deleted with it: their outcomes are still recorded and their
    // finalizers released, so neither the job's nor the namespace's deletion waits on us.
    p.releaseRecorded(snapshot.pods);
    return p.result(undefined, undefined);
  }

  const problem = input.schedule.ok ? input.templateProblem : input.schedule.problem;
  if (problem !== undefined || !input.schedule.ok) {
    // Nothing is scheduled, and the ticks that pass meanwhile are not due later: when the spec
    // is fixed they become one Skipped range, as after a suspension. The Warning repeats on
    // each reconcile and the Event recorder counts it on one Event.
    if (p.bookkeeping.invalidSince === undefined) p.bookkeep({ invalidSince: now });
    if (problem !== undefined) p.event('Warning', problem.kind, problem.message);
    p.releaseRecorded(snapshot.pods);
    return p.result(problem, undefined);
  }
  const schedule = input.schedule.schedule;
  const policy = job.policy;

  // First sight, or the schedule or zone changed: the walk starts at creation (first sight) or
  // at the edit, so an edit never fires a backlog.
  const edited =
    job.bookkeeping.observedSchedule !== undefined &&
    (job.bookkeeping.observedSchedule !== policy.schedule ||
      job.bookkeeping.observedTimeZone !== policy.timeZone);
  if (job.bookkeeping.observedSchedule === undefined || edited) {
    p.bookkeep({
      observedSchedule: policy.schedule,
      observedTimeZone: policy.timeZone,
      scheduleAnchor: edited ? now : (job.bookkeeping.scheduleAnchor ?? job.createdAt),
    });
    if (edited) {
      p.event(
        'Normal',
        'ScheduleChanged',
        `schedule is now "${policy.schedule}" in ${policy.timeZone}; ticks count from ${iso(now)}`,
      );
    }
  }

  if (policy.suspend) {
    if (p.bookkeeping.suspendedSince === undefined) {
      p.bookkeep({ suspendedSince: now });
      p.event('Normal', 'Suspended', 'suspended: no new runs until spec.suspend is false');
    }
    startManualRun(p, snapshot, now);
    cleanUpHistory(p, snapshot);
    p.releaseRecorded(snapshot.pods);
    return p.result(undefined, undefined);
  }

  if (p.bookkeeping.invalidSince !== undefined) {
    // The spec is valid again: ticks since it broke are Skipped, none runs late. An edit of the
    // schedule itself has already moved the walk to now, leaving nothing to record.
    p.skipPassed(
      schedule,
      walkAnchor(p.ledger, p.bookkeeping, job.createdAt),
      now,
      'InvalidSpec',
      'the spec could not be scheduled',
    );
    p.bookkeep({ invalidSince: undefined, scheduleAnchor: now });
    p.event('Normal', 'SpecValid', 'the spec can be scheduled again; ticks count from now');
  }

  const anchor = walkAnchor(p.ledger, p.bookkeeping, job.createdAt);
  if (p.bookkeeping.suspendedSince !== undefined) {
    // Resumed: the ticks that passed while suspended become one Skipped record and no backlog runs.
    const skipped = p.skipPassed(schedule, anchor, now, 'Suspended', 'the job was suspended');
    p.bookkeep({ suspendedSince: undefined, scheduleAnchor: now });
    p.event('Normal', 'Resumed', `resumed: the next tick runs; ${skipped} tick(s) skipped while suspended`);
  } else {
    runDueTick(p, snapshot, schedule, anchor, now);
  }

  retryFailedRun(p, snapshot, now);
  startManualRun(p, snapshot, now);
  cleanUpHistory(p, snapshot);
  p.dropActionsOnEndedRuns();
  p.releaseRecorded(snapshot.pods);

  const from = walkAnchor(p.ledger, p.bookkeeping, job.createdAt);
  const nextTick = schedule.next(from.getTime() > now.getTime() ? from : now) ?? undefined;
  if (nextTick !== undefined) p.wakeAt(new Date(nextTick.getTime() + TICK_PADDING_MS));
  return p.result(undefined, nextTick);
}

/** Accumulates actions and keeps a view of the ledger as those actions will leave it. */
class Planner {
  readonly actions: Action[] = [];
  ledger: LedgerView;
  bookkeeping: Bookkeeping;
  private requeueAt: Date | undefined;

  private readonly jobName: string;

  constructor(ledger: LedgerView, bookkeeping: Bookkeeping, jobName: string) {
    this.ledger = ledger;
    this.bookkeeping = bookkeeping;
    this.jobName = jobName;
  }

  write(write: LedgerWrite): void {
    this.actions.push({ kind: 'ledger', write });
    this.ledger = applyWrite(this.ledger, write);
  }

  notRun(record: NotRunRecord): void {
    this.write({ kind: 'notRun', record });
  }

  /** One tick that gets no run. */
  notRunTick(outcome: NotRunRecord['outcome'], tick: Date, reason: string, message: string, at: Date): void {
    this.notRun({ outcome, firstTick: tick, lastTick: tick, count: 1, reason, message, recordedAt: at });
  }

  /** The ticks in (from, now] as one Skipped range; returns how many there were. */
  skipPassed(schedule: Schedule, from: Date, now: Date, reason: string, what: string): number {
    const passed = ticksBetween(schedule, from, now, 1);
    const first = passed.first[0];
    if (passed.count > 0 && first !== undefined && passed.latest !== null) {
      this.notRun({
        outcome: 'Skipped',
        firstTick: first,
        lastTick: passed.latest,
        count: passed.count,
        reason,
        message: `${passed.count} tick(s) passed while ${what}`,
        recordedAt: now,
      });
    }
    return passed.count;
  }

  claimAndCreate(run: RunId, now: Date): void {
    const name = this.podNameFor(run);
    this.write({ kind: 'claim', run, podName: name, at: now });
    this.actions.push({ kind: 'createPod', run, podName: name });
  }

  podNameFor(run: RunId): string {
    return podName(this.jobName, run);
  }

  event(type: EventType, reason: string, message: string): void {
    this.actions.push({ kind: 'event', type, reason, message });
  }

  bookkeep(change: Partial<Bookkeeping>): void {
    this.bookkeeping = { ...this.bookkeeping, ...change };
  }

  /** A run this plan ends (Replace, TimedOut, CreateRefused) gets no Pod create. */
  dropActionsOnEndedRuns(): void {
    const ended = new Set(this.ledger.runs.filter((r) => r.state === 'Finished').map((r) => r.podName));
    for (let i = this.actions.length - 1; i >= 0; i--) {
      const a = this.actions[i];
      if (a !== undefined && a.kind === 'createPod' && ended.has(a.podName)) this.actions.splice(i, 1);
    }
  }

  /**
   * The finalizer of every tracked Pod whose run the ledger (as this plan leaves it) records
   * as finished, or whose record the bounded history already dropped. The shell releases
   * them only after the records are durable.
   */
  releaseRecorded(pods: readonly PodView[]): void {
    const finished = new Set(this.ledger.runs.filter((r) => r.state === 'Finished').map((r) => r.podName));
    const open = new Set(this.ledger.runs.filter((r) => r.state !== 'Finished').map((r) => r.podName));
    const anchor = accountedUpTo(this.ledger);
    for (const pod of pods) {
      if (!pod.tracked || open.has(pod.name)) continue;
      if (finished.has(pod.name) || recordDropped(pod, this.ledger, anchor)) {
        this.actions.push({ kind: 'releasePod', podName: pod.name, uid: pod.uid });
      }
    }
  }

  wakeAt(at: Date): void {
    if (this.requeueAt === undefined || at.getTime() < this.requeueAt.getTime()) this.requeueAt = at;
  }

  result(problem: SpecProblem | undefined, nextTick: Date | undefined): Plan {
    return {
      actions: this.actions,
      bookkeeping: this.bookkeeping,
      ledger: this.ledger,
      problem,
      nextTick,
      requeueAt: this.requeueAt,
    };
  }
}

/** Folds one write into a ledger view: what a store that accepted it would return on load. */
export function applyWrite(view: LedgerView, write: LedgerWrite): LedgerView {
  switch (write.kind) {
    case 'claim': {
      if (view.runs.some((r) => runKey(r.id) === runKey(write.run))) return view;
      const run: LedgerRun = { id: write.run, podName: write.podName, state: 'Claimed', claimedAt: write.at };
      const manualTokens =
        write.run.kind === 'manual' ? [write.run.token, ...view.manualTokens] : view.manualTokens;
      const latestTick =
        write.run.kind === 'scheduled' ? later(view.latestTick, write.run.tick) : view.latestTick;
      return { ...view, runs: [run, ...view.runs], manualTokens, latestTick };
    }
    case 'created':
      return updateRun(view, write.run, (r) => (r.state === 'Claimed' ? { ...r, state: 'Created' } : r));
    case 'started':
      return updateRun(view, write.run, (r) =>
        r.state === 'Claimed' || r.state === 'Created' ? { ...r, state: 'Running', startedAt: write.at } : r,
      );
    case 'finished':
      return updateRun(view, write.run, (r) =>
        r.state === 'Finished'
          ? r
          : {
              ...r,
              state: 'Finished',
              outcome: write.outcome,
              reason: write.reason,
              message: write.message,
              finishedAt: write.at,
            },
      );
    case 'notRun':
      return {
        ...view,
        notRun: [write.record, ...view.notRun],
        latestTick: later(view.latestTick, write.record.lastTick),
      };
    default:
      return assertNever(write);
  }
}

function updateRun(view: LedgerView, run: RunId, f: (r: LedgerRun) => LedgerRun): LedgerView {
  const key = runKey(run);
  return { ...view, runs: view.runs.map((r) => (runKey(r.id) === key ? f(r) : r)) };
}

/** The walk for due ticks starts after the latest tick the ledger accounts for, or the anchor. */
export function walkAnchor(ledger: LedgerView, bookkeeping: Bookkeeping, createdAt: Date): Date {
  const from = bookkeeping.scheduleAnchor ?? createdAt;
  return later(accountedUpTo(ledger), from) ?? from;
}

/**
 * The latest tick the ledger accounts for: its explicit `latestTick`, or any later tick its
 * lists show (a claim or record of this very plan). Undefined when it accounts for none.
 */
export function accountedUpTo(ledger: LedgerView): Date | undefined {
  let t = ledger.latestTick;
  for (const r of ledger.runs) if (r.id.kind === 'scheduled') t = later(t, r.id.tick);
  for (const n of ledger.notRun) t = later(t, n.lastTick);
  return t;
}

/** The later of two instants, either of which may be unknown. */
export function later(a: Date | undefined, b: Date | undefined): Date | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return b.getTime() > a.getTime() ? b : a;
}

/**
 * A Pod of a run the ledger view no longer lists, though it accounts for it: a scheduled tick
 * at or before the latest accounted one, or a run-now token already handled. Its run finished
 * (the views list every unfinished run) and the bounded history dropped the record.
 */
function recordDropped(pod: PodView, ledger: LedgerView, anchor: Date | undefined): boolean {
  if (pod.run === null) return false;
  if (ledger.runs.some((r) => r.podName === pod.name)) return false;
  if (pod.run.kind === 'manual') return ledger.manualTokens.includes(pod.run.token);
  return anchor !== undefined && pod.run.tick.getTime() <= anchor.getTime();
}

function observePods(p: Planner, s: Snapshot, now: Date): void {
  const { pods } = s;
  const absent = s.absent ?? new Set<string>();
  const byName = new Map(pods.map((pod) => [pod.name, pod]));
  const known = new Set<string>();

  for (const run of s.ledger.runs) {
    known.add(run.podName);
    const pod = byName.get(run.podName);
    if (run.state === 'Finished') {
      // A Replaced or TimedOut run's Pod is stopped, also when the cache showed it only later.
      if ((run.outcome === 'Replaced' || run.outcome === 'TimedOut') && pod !== undefined && isLive(pod)) {
        p.actions.push({ kind: 'deletePod', podName: pod.name, uid: pod.uid, why: run.outcome });
      }
      continue;
    }
    if (pod !== undefined) {
      observeRun(p, s, run, pod, now);
      continue;
    }
    // Not seen, and not confirmed absent by a live read: decide nothing about it yet.
    if (!absent.has(run.podName)) continue;
    if (run.state !== 'Claimed') {
      // It had a Pod, and a tracked Pod cannot vanish unseen: someone took the finalizer off.
      finish(
        p,
        run,
        'Lost',
        'PodRemoved',
        `pod ${run.podName} was removed before its outcome was recorded (its ${FINALIZER_RUN_RECORD} finalizer was taken off)`,
        now,
      );
    }
    // A claim whose Pod was never created is created below, under the one-live-Pod rule.
  }

  const anchor = accountedUpTo(s.ledger);
  for (const pod of pods) {
    if (known.has(pod.name) || pod.run === null) continue;
    if (recordDropped(pod, s.ledger, anchor)) {
      // Its run is accounted for and the bounded history dropped the record. Adopting it would
      // run history twice; a live one is a stopped run's leftover.
      if (isLive(pod))
        p.actions.push({ kind: 'deletePod', podName: pod.name, uid: pod.uid, why: 'Replaced' });
      continue;
    }
    // A Pod of ours the ledger does not know: a lost claim (the ledger was reset or restored).
    // Adopt it so it is accounted for and never duplicated.
    p.event('Warning', 'UnexpectedPod', `adopting pod ${pod.name}, which the ledger did not know`);
    p.write({ kind: 'claim', run: pod.run, podName: pod.name, at: pod.createdAt });
    p.write({ kind: 'created', run: pod.run, at: pod.createdAt });
    const adopted = p.ledger.runs.find((r) => r.podName === pod.name);
    if (adopted !== undefined) observeRun(p, s, adopted, pod, now);
  }

  // Replace claims the new tick in the same plan that records the old run Replaced; with
  // PostgreSQL the claim goes first, so a crash between the two leaves the old run open beside
  // a newer claim. That old run is replaced now, or the new one would wait for it to end.
  if (s.job.policy.concurrencyPolicy === 'Replace') {
    const waiting = p.ledger.runs.find((r) => r.state === 'Claimed' && absent.has(r.podName));
    for (const run of unfinishedRuns(p.ledger)) {
      if (waiting === undefined || run === waiting) continue;
      if (run.claimedAt.getTime() >= waiting.claimedAt.getTime()) continue;
      finish(
        p,
        run,
        'Replaced',
        'ConcurrencyReplace',
        `run ${run.podName} replaced by run ${waiting.podName}`,
        now,
      );
      const left = byName.get(run.podName);
      if (left !== undefined && isLive(left))
        p.actions.push({ kind: 'deletePod', podName: left.name, uid: left.uid, why: 'Replaced' });
    }
  }

  // Claimed runs whose Pod was never created: create it, unless another Pod still lives or
  // the API server has refused it for longer than the run may start late.
  for (const run of p.ledger.runs) {
    if (run.state !== 'Claimed' || !absent.has(run.podName) || s.job.deleting) continue;
    const refusal = s.createRefusal;
    if (refusal !== undefined) {
      const deadlineSeconds = s.job.policy.startingDeadlineSeconds ?? DEFAULT_CREATE_DEADLINE_SECONDS;
      const deadline = run.claimedAt.getTime() + deadlineSeconds * 1000;
      if (now.getTime() >= deadline) {
        finish(
          p,
          run,
          'Failed',
          'CreateRefused',
          `pod ${run.podName} was not created within ${deadlineSeconds}s: ${refusal.message}`,
          now,
        );
        continue;
      }
      p.wakeAt(new Date(deadline));
    }
    if (liveOtherPods(s.pods, run.podName).length === 0) {
      p.actions.push({ kind: 'createPod', run: run.id, podName: run.podName });
    }
  }
}

function observeRun(p: Planner, s: Snapshot, run: LedgerRun, pod: PodView, now: Date): void {
  const policy = s.job.policy;
  if (run.state === 'Claimed') p.write({ kind: 'created', run: run.id, at: pod.createdAt });
  switch (pod.phase) {
    case 'Pending': {
      if (pod.deleting) {
        // Never bound to a node, it can no longer start; bound, the kubelet may still run it.
        if (!pod.bound)
          finish(p, run, 'Lost', 'PodDeleted', `pod ${pod.name} was deleted before it started`, now);
        return;
      }
      const limit = policy.maxPendingSeconds;
      if (limit === undefined) return;
      const deadline = pod.createdAt.getTime() + limit * 1000;
      if (now.getTime() >= deadline) {
        finish(p, run, 'TimedOut', 'PodNotStarted', `pod ${pod.name} did not start within ${limit}s`, now);
        p.actions.push({ kind: 'deletePod', podName: pod.name, uid: pod.uid, why: 'TimedOut' });
      } else {
        p.wakeAt(new Date(deadline));
      }
      return;
    }
    case 'Running':
      // Also while it is being deleted: it still runs until the kubelet has stopped it.
      if (run.state !== 'Running') {
        p.write({ kind: 'started', run: run.id, at: pod.startedAt ?? now });
        p.event('Normal', 'RunStarted', `pod ${pod.name} is running`);
      }
      return;
    case 'Succeeded':
      finish(p, run, 'Succeeded', 'PodSucceeded', `pod ${pod.name} succeeded`, pod.finishedAt ?? now);
      return;
    case 'Failed':
      if (stoppedFromOutside(pod)) {
        // The Pod's own reason when it names the stop (Evicted by the kubelet, NodeLost), else the
        // disruption's (EvictionByEvictionAPI, PreemptionByScheduler): a killed container's
        // reason ("Error") says nothing about why it was stopped.
        const stoppedReason =
          pod.reason !== undefined && STOPPED_REASONS.has(pod.reason) ? pod.reason : undefined;
        const deleted = !pod.disrupted && stoppedReason === undefined;
        finish(
          p,
          run,
          'Lost',
          deleted ? 'PodDeleted' : (stoppedReason ?? pod.disruptionReason ?? 'DisruptionTarget'),
          deleted
            ? `pod ${pod.name} was deleted before it finished${pod.message === undefined ? '' : ` (${pod.message})`}`
            : ((stoppedReason === undefined ? pod.disruptionMessage : undefined) ??
                pod.message ??
                `pod ${pod.name} was stopped before it finished`),
          pod.finishedAt ?? now,
        );
      } else {
        finish(
          p,
          run,
          'Failed',
          pod.reason ?? 'PodFailed',
          pod.message ?? `pod ${pod.name} failed`,
          pod.finishedAt ?? now,
        );
      }
      return;
    case 'Unknown':
      return;
    default:
      assertNever(pod.phase);
  }
}

const STOPPED_REASONS = new Set(['Evicted', 'NodeLost', 'Terminated', 'Preempting', 'DeletionByPodGC']);

/**
 * A failed Pod that was stopped rather than failing on its own: evicted, disrupted, or
 * deleted before its containers ended (deletion asked at or before the last container exit).
 */
function stoppedFromOutside(pod: PodView): boolean {
  if (pod.disrupted || (pod.reason !== undefined && STOPPED_REASONS.has(pod.reason))) return true;
  if (!pod.deleting) return false;
  if (pod.finishedAt === undefined || pod.deletionRequestedAt === undefined) return true;
  return pod.finishedAt.getTime() >= pod.deletionRequestedAt.getTime();
}

function finish(
  p: Planner,
  run: LedgerRun,
  outcome: RunOutcome,
  reason: string,
  message: string,
  at: Date,
): void {
  p.write({ kind: 'finished', run: run.id, outcome, reason, message, at });
  p.event(outcome === 'Succeeded' ? 'Normal' : 'Warning', `Run${outcome}`, message);
}

function isLive(pod: PodView): boolean {
  return !isTerminal(pod.phase) && !pod.deleting;
}

/** Pods of the job, other than `except`, that may still be running. */
function liveOtherPods(pods: readonly PodView[], except?: string): PodView[] {
  return pods.filter((pod) => pod.name !== except && !isTerminal(pod.phase));
}

function unfinishedRuns(ledger: LedgerView): LedgerRun[] {
  return ledger.runs.filter((r) => r.state !== 'Finished');
}

function runDueTick(p: Planner, s: Snapshot, schedule: Schedule, anchor: Date, now: Date): void {
  const due = ticksBetween(schedule, anchor, now, MISSED_ONE_BY_ONE);
  if (due.count === 0 || due.latest === null) return;
  const latest = due.latest;
  const policy = s.job.policy;

  const missed = due.count - 1;
  if (missed > 0) {
    // Ticks that passed while no controller acted: only the latest may still run.
    const oneByOne = due.first.filter((t) => t.getTime() < latest.getTime()).slice(0, MISSED_ONE_BY_ONE);
    for (const tick of oneByOne) {
      const message = `tick ${iso(tick)} passed while no controller acted; superseded by ${iso(latest)}`;
      p.notRunTick('Missed', tick, 'NoController', message, now);
    }
    const rest = missed - oneByOne.length;
    const lastOneByOne = oneByOne[oneByOne.length - 1];
    const restFirst = lastOneByOne === undefined ? null : schedule.next(lastOneByOne);
    if (rest > 0 && restFirst !== null && due.beforeLatest !== null) {
      p.notRun({
        outcome: 'Missed',
        firstTick: restFirst,
        lastTick: due.beforeLatest,
        count: rest,
        reason: 'NoController',
        message: `${rest} more ticks passed while no controller acted`,
        recordedAt: now,
      });
      p.event(
        'Warning',
        'TooManyMissedTicks',
        `${missed} ticks were missed; only the latest, ${iso(latest)}, may run`,
      );
    } else {
      p.event(
        'Warning',
        'TicksMissed',
        `${missed} tick(s) passed while no controller acted; only the latest may run`,
      );
    }
  }

  const lateMs = now.getTime() - latest.getTime();
  if (policy.startingDeadlineSeconds !== undefined && lateMs > policy.startingDeadlineSeconds * 1000) {
    const message = `tick ${iso(latest)} is ${Math.round(lateMs / 1000)}s late, past startingDeadlineSeconds=${policy.startingDeadlineSeconds}`;
    p.notRunTick('Missed', latest, 'DeadlineExceeded', message, now);
    p.event('Warning', 'TickMissed', message);
    return;
  }

  if (!s.ledgerAvailable) {
    // Nothing is claimed while the ledger is down; the tick is decided when it returns (and is
    // Missed then if its deadline passed).
    p.wakeAt(new Date(now.getTime() + 1000));
    return;
  }

  const active = unfinishedRuns(p.ledger);
  const live = liveOtherPods(s.pods);
  if (active.length > 0 || live.length > 0) {
    const busy = active[0]?.podName ?? live[0]?.name ?? '';
    if (policy.concurrencyPolicy === 'Forbid') {
      const message = `tick ${iso(latest)} skipped: run ${busy} is still active (concurrencyPolicy Forbid)`;
      p.notRunTick('Skipped', latest, 'RunActive', message, now);
      p.event('Normal', 'TickSkipped', message);
      return;
    }
    for (const run of active) {
      finish(
        p,
        run,
        'Replaced',
        'ConcurrencyReplace',
        `run ${run.podName} replaced by the tick of ${iso(latest)}`,
        now,
      );
    }
    for (const pod of s.pods) {
      if (!isTerminal(pod.phase) && !pod.deleting) {
        p.actions.push({ kind: 'deletePod', podName: pod.name, uid: pod.uid, why: 'Replaced' });
      }
    }
    // Claimed now; its Pod is created once the replaced Pods are gone.
    const run: RunId = { kind: 'scheduled', tick: latest, attempt: 1 };
    p.write({ kind: 'claim', run, podName: p.podNameFor(run), at: now });
    p.wakeAt(new Date(now.getTime() + 1000));
    return;
  }

  p.claimAndCreate({ kind: 'scheduled', tick: latest, attempt: 1 }, now);
}

/**
 * The newest occasion's last attempt, if it failed and may be tried again: the one finished run
 * whose occasion is not decided yet (the failure streak in ./status.ts waits for it too).
 */
export function retryCandidate(ledger: LedgerView, maxAttempts: number): LedgerRun | undefined {
  if (maxAttempts <= 1) return undefined;
  const newest = [...ledger.runs].sort(newestFirst)[0];
  if (newest === undefined || newest.state !== 'Finished') return undefined;
  if (newest.outcome === 'Succeeded' || newest.outcome === 'Replaced') return undefined;
  if (newest.id.attempt >= maxAttempts) return undefined;
  if (
    ledger.runs.some((r) => r !== newest && sameOccasion(r.id, newest.id) && r.id.attempt > newest.id.attempt)
  )
    return undefined;
  return newest;
}

/**
 * Runs are claimed one after another, so among claims of one instant (a frozen clock, or the
 * status-only history's claim times, which are approximate) an open run is the newer, and of
 * two finished ones the one that ended later: the answer never depends on the list's order.
 */
function newestFirst(a: LedgerRun, b: LedgerRun): number {
  return (
    b.claimedAt.getTime() - a.claimedAt.getTime() ||
    Number(a.state === 'Finished') - Number(b.state === 'Finished') ||
    (b.finishedAt?.getTime() ?? 0) - (a.finishedAt?.getTime() ?? 0)
  );
}

function retryFailedRun(p: Planner, s: Snapshot, now: Date): void {
  const policy = s.job.policy;
  const newest = retryCandidate(p.ledger, policy.maxAttempts);
  if (newest === undefined) return;
  // The earlier attempt's outcome must be durable before the retry is claimed: a crash between
  // the claim and that record would leave the attempt open, to be re-created and run again.
  const key = runKey(newest.id);
  if (!s.ledger.runs.some((r) => runKey(r.id) === key && r.state === 'Finished')) {
    p.wakeAt(new Date(now.getTime() + 1000));
    return;
  }

  const notBefore = (newest.finishedAt ?? newest.claimedAt).getTime() + policy.backoffSeconds * 1000;
  if (now.getTime() < notBefore) {
    p.wakeAt(new Date(notBefore));
    return;
  }
  if (!s.ledgerAvailable || unfinishedRuns(p.ledger).length > 0) return;
  if (liveOtherPods(s.pods).length > 0) return; // the earlier attempt's Pod may still run: wait for it
  const run = nextAttempt(newest.id);
  p.event(
    'Normal',
    'RetryStarted',
    `attempt ${run.attempt} of ${policy.maxAttempts} after ${newest.outcome ?? 'failure'}`,
  );
  p.claimAndCreate(run, now);
}

function startManualRun(p: Planner, s: Snapshot, now: Date): void {
  const token = s.job.runNowToken;
  if (token === undefined || token === '' || p.ledger.manualTokens.includes(token)) return;
  if (!s.ledgerAvailable) return;
  if (unfinishedRuns(p.ledger).length > 0 || liveOtherPods(s.pods).length > 0) {
    // One run at a time: the manual run starts when the active one ends (a Pod event wakes us).
    return;
  }
  p.event('Normal', 'RunNow', `manual run requested with token "${token}"`);
  p.claimAndCreate({ kind: 'manual', token, attempt: 1 }, now);
}

function cleanUpHistory(p: Planner, s: Snapshot): void {
  const unfinished = new Set(unfinishedRuns(p.ledger).map((r) => r.podName));
  const finished = s.pods.filter(
    (pod) => isTerminal(pod.phase) && !pod.deleting && !unfinished.has(pod.name),
  );
  const newestFirst = (a: PodView, b: PodView) =>
    (b.finishedAt ?? b.createdAt).getTime() - (a.finishedAt ?? a.createdAt).getTime() ||
    b.name.localeCompare(a.name);
  const succeeded = finished.filter((pod) => pod.phase === 'Succeeded').sort(newestFirst);
  const failed = finished.filter((pod) => pod.phase === 'Failed').sort(newestFirst);
  const policy = s.job.policy;
  for (const pod of [
    ...succeeded.slice(policy.successfulRunsHistoryLimit),
    ...failed.slice(policy.failedRunsHistoryLimit),
  ]) {
    p.actions.push({ kind: 'deletePod', podName: pod.name, uid: pod.uid, why: 'HistoryLimit' });
  }
}

function iso(d: Date): string {
  return d.toISOString().replace('.000Z', 'Z');
}

export function assertNever(x: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(x)}`);
}
