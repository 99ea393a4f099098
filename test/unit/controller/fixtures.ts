// Builders for planner snapshots: a job, its Pods and its ledger, with every field defaulted.
import type { LedgerRun, LedgerView, NotRunRecord } from '../../../src/ledger/ledger.ts';
import type { JobPolicy, JobView, PodView, Snapshot } from '../../../src/controller/snapshot.ts';
import { plan, type Action, type Plan, type PlanInput } from '../../../src/controller/plan.ts';
import { parseSchedule } from '../../../src/schedule/index.ts';
import { podName, type RunId } from '../../../src/run/identity.ts';

export const T = (s: string): Date => new Date(s);

export const CREATED = T('2026-11-22T09:59:30Z');

export function policy(over: Partial<JobPolicy> = {}): JobPolicy {
  return {
    schedule: '*/5 * * * *',
    timeZone: 'UTC',
    suspend: false,
    concurrencyPolicy: 'Forbid',
    maxAttempts: 1,
    backoffSeconds: 10,
    successfulRunsHistoryLimit: 3,
    failedRunsHistoryLimit: 1,
    ...over,
  };
}

export function job(over: Partial<JobView> = {}, pol: Partial<JobPolicy> = {}): JobView {
  const p = policy(pol);
  return {
    namespace: 'ns',
    name: 'job',
    uid: 'uid-1',
    generation: 1,
    createdAt: CREATED,
    deleting: false,
    policy: p,
    bookkeeping: { observedSchedule: p.schedule, observedTimeZone: p.timeZone, scheduleAnchor: CREATED },
    ...over,
  };
}

export const tickRun = (tick: string, attempt = 1): RunId => ({ kind: 'scheduled', tick: T(tick), attempt });

export function run(id: RunId, over: Partial<LedgerRun> = {}): LedgerRun {
  return {
    id,
    podName: podName('job', id),
    state: 'Created',
    claimedAt: id.kind === 'scheduled' ? id.tick : CREATED,
    ...over,
  };
}

export function pod(id: RunId, over: Partial<PodView> = {}): PodView {
  const name = podName('job', id);
  return {
    name,
    uid: `pod-uid-${name}`,
    run: id,
    phase: 'Pending',
    deleting: false,
    tracked: true,
    // A Pod past Pending has been bound to a node.
    bound: over.phase !== undefined && over.phase !== 'Pending',
    disrupted: false,
    createdAt: id.kind === 'scheduled' ? id.tick : CREATED,
    ...over,
  };
}

export function notRun(over: Partial<NotRunRecord> & Pick<NotRunRecord, 'firstTick'>): NotRunRecord {
  return {
    outcome: 'Missed',
    lastTick: over.firstTick,
    count: 1,
    reason: 'NoController',
    message: '',
    recordedAt: over.firstTick,
    ...over,
  };
}

export function ledger(
  runs: LedgerRun[] = [],
  nr: NotRunRecord[] = [],
  manualTokens: string[] = [],
): LedgerView {
  return { runs, notRun: nr, manualTokens };
}

export interface Case {
  job?: JobView;
  pods?: PodView[];
  ledger?: LedgerView;
  ledgerAvailable?: boolean;
  now: string | Date;
  templateProblem?: PlanInput['templateProblem'];
  /**
   * Pods a live read found absent. By default, as the shell would find them: every unfinished
   * run's Pod that `pods` does not show.
   */
  absent?: readonly string[];
  createRefusal?: Snapshot['createRefusal'];
}

export function planFor(c: Case): Plan {
  const j = c.job ?? job();
  const pods = c.pods ?? [];
  const l = c.ledger ?? ledger();
  const shown = new Set(pods.map((p) => p.name));
  const absent =
    c.absent ?? l.runs.filter((r) => r.state !== 'Finished' && !shown.has(r.podName)).map((r) => r.podName);
  const snapshot: Snapshot = {
    job: j,
    pods,
    ledger: l,
    ledgerAvailable: c.ledgerAvailable ?? true,
    absent: new Set(absent),
    createRefusal: c.createRefusal,
  };
  const parsed = parseSchedule(j.policy.schedule, j.policy.timeZone);
  return plan({
    snapshot,
    schedule: parsed.ok ? { ok: true, schedule: parsed.schedule } : { ok: false, problem: parsed.error },
    templateProblem: c.templateProblem,
    now: typeof c.now === 'string' ? T(c.now) : c.now,
  });
}

/** The actions as short strings, easy to compare in tables. */
export function describeActions(actions: readonly Action[]): string[] {
  return actions.map((a) => {
    switch (a.kind) {
      case 'ledger': {
        const w = a.write;
        switch (w.kind) {
          case 'claim':
            return `claim ${w.podName}`;
          case 'created':
          case 'started':
            return `${w.kind} ${podName('job', w.run)}`;
          case 'finished':
            return `finished ${podName('job', w.run)} ${w.outcome}`;
          case 'notRun':
            return `${w.record.outcome} ${w.record.firstTick.toISOString()} x${w.record.count} ${w.record.reason}`;
        }
        break;
      }
      case 'createPod':
        return `create ${a.podName}`;
      case 'deletePod':
        return `delete ${a.podName} ${a.why}`;
      case 'releasePod':
        return `release ${a.podName}`;
      case 'event':
        return `event ${a.reason}`;
    }
    return 'unknown';
  });
}

export const withoutEvents = (actions: readonly Action[]): string[] =>
  describeActions(actions).filter((a) => !a.startsWith('event '));
