/**
 * The job's status as a pure summary of the ledger, the Pods and the plan.
 *
 * Conditions follow metav1.Condition: lastTransitionTime changes only when a condition's
 * status changes. The summary is deterministic, so an unchanged job yields an identical status
 * and the shell writes nothing.
 *
 * The failure streak (`consecutiveFailures`, `lastFailureTime`; docs/adr/0011-failure-streak.md)
 * is carried from the prior status and advanced over the finished runs the ledger shows past
 * `status.ledger.streakCursor`, in the order they ended (runs that end in one instant: in the
 * order they were seen, then of their claims; the cursor names every run counted at its instant). The count and the
 * cursor are written together, so a run is counted exactly once whichever write is lost and replayed, and the
 * bounded history, retention or a switch of ledger cannot change a count already made. An
 * occasion (a tick or a manual run) counts once, by its last attempt, once no further attempt
 * can follow: a failed attempt the planner may still retry (plan.ts `retryCandidate`) holds the
 * cursor until it is retried or superseded. Not guaranteed: a run that ends and leaves the
 * ledger's recent view (20 runs) before any status write succeeds is never counted; a
 * `retry.maxAttempts` raised after an occasion was counted can retry it, and that occasion then
 * counts again by its new last attempt.
 */
import type {
  ActiveRun,
  Condition,
  LedgerClaim,
  RunRecord,
  ScheduledSingletonJobStatus,
} from '../api/types.ts';
import { isDeepStrictEqual } from 'node:util';
import type { LedgerRun, LedgerView, NotRunRecord, RunOutcome } from '../ledger/ledger.ts';
import { accountedUpTo, later, retryCandidate, type Plan } from './plan.ts';
import { runKey, sameOccasion } from '../run/identity.ts';
import { ticksBetween, type Schedule } from '../schedule/index.ts';
import type { CreateRefusal, JobView, PodView } from './snapshot.ts';

export const HISTORY_LIMIT = 20;
export const RUNS_KEPT = 10;

export interface SummaryInput {
  readonly job: JobView;
  readonly prior: ScheduledSingletonJobStatus | undefined;
  readonly plan: Plan;
  readonly pods: readonly PodView[];
  readonly ledgerAvailable: boolean;
  /** The API server refuses the job's Pods. */
  readonly createRefusal?: CreateRefusal | undefined;
  readonly term: number;
  readonly now: Date;
}

export function summarize(input: SummaryInput): ScheduledSingletonJobStatus {
  const { job, plan, now } = input;
  const ledger = plan.ledger;
  const unfinished = ledger.runs.filter((r) => r.state !== 'Finished');
  const finished = ledger.runs.filter(isFinished);
  const activeRun = unfinished[0];
  const activePod =
    activeRun === undefined ? undefined : input.pods.find((p) => p.name === activeRun.podName);

  const lastFinished = [...finished].sort(byFinishedDesc)[0];
  const lastSucceeded = finished.filter((r) => r.outcome === 'Succeeded').sort(byFinishedDesc)[0];
  const lastRunTick = ledger.runs.reduce<Date | undefined>(
    (t, r) => (r.id.kind === 'scheduled' && (t === undefined || r.id.tick > t) ? r.id.tick : t),
    undefined,
  );
  // Both carry over from the prior status: the bounded history may drop the runs they name.
  const lastTick = later(lastRunTick, date(input.prior?.lastScheduleTime));
  const latestTick = later(accountedUpTo(ledger), date(input.prior?.ledger?.latestTick));
  const streak = failureStreak(ledger, input.prior, job.policy.maxAttempts);

  const conditionsNow: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>[] = [
    readyCondition(input),
    job.policy.suspend
      ? { type: 'Suspended', status: 'True', reason: 'Suspended', message: 'spec.suspend is true' }
      : { type: 'Suspended', status: 'False', reason: 'NotSuspended', message: 'spec.suspend is false' },
    activeRun === undefined
      ? { type: 'Running', status: 'False', reason: 'NoActiveRun', message: 'no run is active' }
      : activePod?.phase === 'Running'
        ? {
            type: 'Running',
            status: 'True',
            reason: 'PodRunning',
            message: `pod ${activeRun.podName} is running`,
          }
        : {
            type: 'Running',
            status: 'True',
            reason: 'PodPending',
            message: `pod ${activeRun.podName} has not started yet`,
          },
    lastFinished === undefined
      ? { type: 'Degraded', status: 'False', reason: 'NoRunsYet', message: 'no run has finished yet' }
      : lastFinished.outcome === 'Succeeded'
        ? {
            type: 'Degraded',
            status: 'False',
            reason: 'LastRunSucceeded',
            message: `run ${lastFinished.podName} succeeded`,
          }
        : {
            type: 'Degraded',
            status: 'True',
            reason: lastFinished.outcome,
            message: lastFinished.message ?? `run ${lastFinished.podName} did not succeed`,
          },
  ];
  const conditions = conditionsNow.map((c) =>
    withTransition(c, input.prior?.conditions, job.generation, now),
  );

  const status: ScheduledSingletonJobStatus = {
    observedGeneration: job.generation,
    conditions,
    ...(activeRun === undefined ? {} : { active: activeOf(activeRun) }),
    ...(lastTick === undefined ? {} : { lastScheduleTime: iso(lastTick) }),
    // The bounded history can push every finished run out (100 Missed ticks after an outage):
    // these two then carry over from the prior status rather than vanish.
    ...latest('lastSuccessfulTime', lastSucceeded?.finishedAt, input.prior?.lastSuccessfulTime),
    consecutiveFailures: streak.consecutiveFailures,
    ...(streak.lastFailureTime === undefined ? {} : { lastFailureTime: streak.lastFailureTime }),
    ...(plan.nextTick === undefined || job.policy.suspend ? {} : { nextScheduleTime: iso(plan.nextTick) }),
    ...(lastFinished !== undefined
      ? { lastRun: recordOfRun(lastFinished) }
      : input.prior?.lastRun === undefined
        ? {}
        : { lastRun: input.prior.lastRun }),
    history: history(ledger),
    ledger: {
      ...(plan.bookkeeping.scheduleAnchor === undefined
        ? {}
        : { scheduleAnchor: iso(plan.bookkeeping.scheduleAnchor) }),
      ...(latestTick === undefined ? {} : { latestTick: iso(latestTick) }),
      ...(plan.bookkeeping.observedSchedule === undefined
        ? {}
        : { observedSchedule: plan.bookkeeping.observedSchedule }),
      ...(plan.bookkeeping.observedTimeZone === undefined
        ? {}
        : { observedTimeZone: plan.bookkeeping.observedTimeZone }),
      ...(plan.bookkeeping.invalidSince === undefined
        ? {}
        : { invalidSince: iso(plan.bookkeeping.invalidSince) }),
      ...(plan.bookkeeping.suspendedSince === undefined
        ? {}
        : { suspendedSince: iso(plan.bookkeeping.suspendedSince) }),
      term: input.term,
      claims: unfinished.map((r) => claimOf(r, input.term)),
      ...(ledger.manualTokens[0] === undefined ? {} : { handledRunNowToken: ledger.manualTokens[0] }),
      ...(streak.cursor === undefined ? {} : { streakCursor: streak.cursor }),
    },
  };
  return status;
}

/**
 * Whether `next` says anything the job's `prior` status does not. The term that would write it is
 * not news by itself: a new term does not rewrite every job whose status is otherwise the same
 * (10,000 status writes at each failover, each answered by a watch event); it is carried by the
 * next write that has something to say, so `ledger.term` stays the highest term that wrote.
 */
export function statusChanged(
  next: ScheduledSingletonJobStatus,
  prior: ScheduledSingletonJobStatus | undefined,
): boolean {
  const priorTerm = prior?.ledger?.term;
  const comparable =
    priorTerm === undefined || next.ledger === undefined
      ? next
      : { ...next, ledger: { ...next.ledger, term: priorTerm } };
  return !isDeepStrictEqual(plain(comparable), plain(prior ?? {}));
}

/** As the API server would return it: no undefined members, dates as strings. */
function plain(status: ScheduledSingletonJobStatus): unknown {
  return JSON.parse(JSON.stringify(status)) as unknown;
}

export interface FailureStreak {
  readonly consecutiveFailures: number;
  readonly lastFailureTime?: string | undefined;
  readonly cursor?: StreakCursor | undefined;
}

type StreakCursor = NonNullable<NonNullable<ScheduledSingletonJobStatus['ledger']>['streakCursor']>;

/**
 * The prior streak advanced over the runs that ended after its cursor, oldest first. A prior
 * status without a cursor (a new job, or one written before the streak existed) counts every
 * finished run the ledger shows.
 */
export function failureStreak(
  ledger: LedgerView,
  prior: ScheduledSingletonJobStatus | undefined,
  maxAttempts: number,
): FailureStreak {
  let count = prior?.consecutiveFailures ?? 0;
  let lastFailure = date(prior?.lastFailureTime);
  let cursor = prior?.ledger?.streakCursor;
  const from =
    cursor === undefined
      ? undefined
      : { at: Date.parse(cursor.completionTime), pods: new Set(cursor.podNames) };
  const ended = ledger.runs
    .filter(
      (r): r is LedgerRun & { outcome: RunOutcome; finishedAt: Date } =>
        isFinished(r) && r.finishedAt !== undefined,
    )
    .filter((r) => {
      if (from === undefined) return true;
      const at = r.finishedAt.getTime();
      return at > from.at || (at === from.at && !from.pods.has(r.podName));
    })
    .sort(
      (a, b) =>
        a.finishedAt.getTime() - b.finishedAt.getTime() ||
        a.claimedAt.getTime() - b.claimedAt.getTime() ||
        byName(a.podName, b.podName),
    );
  const pending = retryCandidate(ledger, maxAttempts);
  for (const run of ended) {
    // Everything that ended after a run still awaiting its retry waits with it.
    if (pending !== undefined && runKey(pending.id) === runKey(run.id)) break;
    const at = iso(run.finishedAt);
    cursor =
      cursor !== undefined && Date.parse(cursor.completionTime) === run.finishedAt.getTime()
        ? { completionTime: cursor.completionTime, podNames: [...cursor.podNames, run.podName] }
        : { completionTime: at, podNames: [run.podName] };
    const superseded = ledger.runs.some((r) => sameOccasion(r.id, run.id) && r.id.attempt > run.id.attempt);
    if (superseded) continue; // its occasion counts by its last attempt
    switch (run.outcome) {
      case 'Succeeded':
        count = 0;
        break;
      case 'Failed':
      case 'Lost':
      case 'TimedOut':
        count++;
        lastFailure = later(lastFailure, run.finishedAt);
        break;
      case 'Replaced':
        break;
      default: {
        const never: never = run.outcome;
        throw new Error(`unknown outcome ${String(never)}`);
      }
    }
  }
  return {
    consecutiveFailures: count,
    ...(lastFailure === undefined ? {} : { lastFailureTime: iso(lastFailure) }),
    ...(cursor === undefined ? {} : { cursor }),
  };
}

/**
 * Schedule periods from `since` (the last success, or the job's creation) to `now`. The period
 * is the interval from the latest tick in (since, now] to the first tick after now, so an
 * irregular schedule (weekdays only) is measured by the gap it is in: a weekend is one period,
 * not three. 0 when no tick has come due since `since`: nothing was missed yet.
 */
export function periodsSinceSuccess(schedule: Schedule, since: Date, now: Date): number {
  if (now.getTime() <= since.getTime()) return 0;
  const before = ticksBetween(schedule, since, now, 0).latest;
  const after = schedule.next(now);
  if (before === null || after === null) return 0;
  return (now.getTime() - since.getTime()) / (after.getTime() - before.getTime());
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function latest(
  field: 'lastSuccessfulTime',
  now: Date | undefined,
  prior: string | undefined,
): { lastSuccessfulTime?: string } {
  const candidates = [now?.getTime(), prior === undefined ? undefined : Date.parse(prior)].filter(
    (t): t is number => t !== undefined && !Number.isNaN(t),
  );
  return candidates.length === 0 ? {} : { [field]: iso(new Date(Math.max(...candidates))) };
}

function readyCondition(input: SummaryInput): Omit<Condition, 'lastTransitionTime' | 'observedGeneration'> {
  const problem = input.plan.problem;
  if (problem !== undefined)
    return { type: 'Ready', status: 'False', reason: problem.kind, message: problem.message };
  if (!input.ledgerAvailable) {
    return {
      type: 'Ready',
      status: 'False',
      reason: 'LedgerUnavailable',
      message: 'the ledger cannot be reached: no new tick is claimed until it returns',
    };
  }
  if (input.createRefusal !== undefined) {
    return {
      type: 'Ready',
      status: 'False',
      reason: 'CreateRefused',
      message: `the API server refuses the job's pods: ${input.createRefusal.message}`,
    };
  }
  if (input.job.policy.suspend)
    return { type: 'Ready', status: 'True', reason: 'Suspended', message: 'valid and suspended' };
  return { type: 'Ready', status: 'True', reason: 'Scheduled', message: 'valid and scheduled' };
}

function withTransition(
  c: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>,
  prior: readonly Condition[] | undefined,
  generation: number,
  now: Date,
): Condition {
  const before = prior?.find((p) => p.type === c.type);
  const lastTransitionTime =
    before !== undefined && before.status === c.status ? before.lastTransitionTime : iso(now);
  return { ...c, lastTransitionTime, observedGeneration: generation };
}

function activeOf(run: LedgerRun): ActiveRun {
  return {
    podName: run.podName,
    attempt: run.id.attempt,
    ...(run.id.kind === 'scheduled' ? { tick: iso(run.id.tick) } : { manualToken: run.id.token }),
    ...(run.startedAt === undefined ? {} : { startTime: iso(run.startedAt) }),
  };
}

function claimOf(run: LedgerRun, term: number): LedgerClaim {
  return {
    podName: run.podName,
    attempt: run.id.attempt,
    ...(run.id.kind === 'scheduled' ? { tick: iso(run.id.tick) } : { manualToken: run.id.token }),
    claimedAt: iso(run.claimedAt),
    term: run.term ?? term,
    state: run.state === 'Finished' ? 'Running' : run.state, // only unfinished runs are claims
    ...(run.startedAt === undefined ? {} : { startTime: iso(run.startedAt) }),
  };
}

/** A finished run as a history entry; an unfinished one has no outcome and is not recorded. */
export function recordOfRun(run: LedgerRun & { outcome: RunOutcome }): RunRecord {
  return {
    podName: run.podName,
    attempt: run.id.attempt,
    ...(run.id.kind === 'scheduled' ? { tick: iso(run.id.tick) } : { manualToken: run.id.token }),
    outcome: run.outcome,
    ...(run.reason === undefined ? {} : { reason: run.reason }),
    ...(run.message === undefined ? {} : { message: run.message }),
    startTime: iso(run.startedAt ?? run.claimedAt),
    ...(run.finishedAt === undefined ? {} : { completionTime: iso(run.finishedAt) }),
  };
}

function recordOfNotRun(n: NotRunRecord): RunRecord {
  return {
    tick: iso(n.firstTick),
    ...(n.count > 1 ? { lastTick: iso(n.lastTick) } : {}),
    count: n.count,
    outcome: n.outcome,
    reason: n.reason,
    message: n.message,
    completionTime: iso(n.recordedAt),
  };
}

/**
 * Finished runs and ticks not run, newest first, bounded. The newest RUNS_KEPT runs always stay
 * (DESIGN.md: at least the last 10 runs): a burst of Missed ticks after an outage must not push
 * out a run whose Pod was just stopped, or the status-only ledger would forget it.
 */
function history(ledger: LedgerView): RunRecord[] {
  type Entry = { at: number; record: RunRecord };
  const newestFirst = (a: Entry, b: Entry) =>
    b.at - a.at || (b.record.attempt ?? 0) - (a.record.attempt ?? 0);
  const runs: Entry[] = ledger.runs
    .filter(isFinished)
    .map((r) => ({ at: occasionTime(r), record: recordOfRun(r) }))
    .sort(newestFirst);
  const kept = runs.slice(0, RUNS_KEPT);
  const others: Entry[] = [
    ...runs.slice(RUNS_KEPT),
    ...ledger.notRun.map((n) => ({ at: n.lastTick.getTime(), record: recordOfNotRun(n) })),
  ].sort(newestFirst);
  return [...kept, ...others.slice(0, HISTORY_LIMIT - kept.length)].sort(newestFirst).map((e) => e.record);
}

function isFinished(r: LedgerRun): r is LedgerRun & { outcome: RunOutcome } {
  return r.state === 'Finished' && r.outcome !== undefined;
}

function occasionTime(r: LedgerRun): number {
  return r.id.kind === 'scheduled' ? r.id.tick.getTime() : r.claimedAt.getTime();
}

function byFinishedDesc(a: LedgerRun, b: LedgerRun): number {
  return (b.finishedAt?.getTime() ?? 0) - (a.finishedAt?.getTime() ?? 0);
}

function date(s: string | undefined): Date | undefined {
  if (s === undefined) return undefined;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

function iso(d: Date): string {
  return d.toISOString().replace('.000Z', 'Z');
}
