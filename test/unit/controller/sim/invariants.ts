/**
 * The checkers: DESIGN.md's invariants stated over what the fake world recorded, never over
 * the controller's own view of itself.
 *
 * Every check reads the whole history of the simulated world, as it happened: nothing is
 * excused because a process died later (the end of a scenario kills them all).
 *
 * - OutcomeLog: every run and every Skipped/Missed record that was ever committed (in a status
 *   write, or in the PostgreSQL-semantics store), kept for ever. Committing a different outcome
 *   for a run that already had one, or a different range under a record's key, is a violation
 *   (outcomes never change). Committing Lost while the run's Pod still exists and may run is a
 *   violation (Lost only once the Pod can no longer run).
 * - checkTicks: at quiescence, the ticks of the schedule in (creation, now] are tiled exactly
 *   once by the committed records: one run (any number of attempts) or one Skipped/Missed
 *   record per tick, a range counting every tick it covers.
 * - checkPods: no Pod name was ever created twice, no Pod was created before a committed claim
 *   of its run, and none while another Pod of the job could still run (plan.ts's contract).
 * - The world checks, as each Pod object goes, that its run's outcome was already committed
 *   (the tracking finalizer's promise).
 * - checkStreak: every committed status's consecutiveFailures is the failure streak of the
 *   occasions (ticks, manual runs) decided up to its cursor, computed from everything ever
 *   committed: each occasion once, by its last attempt.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { RunRecord, ScheduledSingletonJobStatus } from '../../../../src/api/types.ts';
import type { RunId } from '../../../../src/run/identity.ts';
import { runKey } from '../../../../src/run/identity.ts';
import type { Schedule } from '../../../../src/schedule/index.ts';
import { isTerminalPod, type CreatedPod } from './api-server.ts';

/** The invariants, as the checkers name them. */
export type Invariant =
  /** DESIGN.md invariant 1: at most one Pod per (job, tick, attempt). */
  | 'one Pod per run'
  /** DESIGN.md invariant 2: a tick is claimed in the ledger before its Pod exists. */
  | 'claim before Pod'
  /** DESIGN.md invariant 2: a run's Pod cannot leave the API server before its outcome is recorded. */
  | 'tracked until recorded'
  /** plan.ts: no Pod is created while another Pod of the job may still run. */
  | 'one live Pod per job'
  /** DESIGN.md invariant 4: a retry is a new attempt of the newest tick, after a failure. */
  | 'retries'
  /** DESIGN.md invariant 4: every tick ends in exactly one record, every run in one outcome. */
  | 'one record per tick'
  /** DESIGN.md Outcomes: a run recorded Replaced or TimedOut has its Pod stopped (deleted). */
  | 'ended runs stop'
  /** DESIGN.md Outcomes: Lost only once the Pod can no longer run. */
  | 'Lost only when gone'
  /** ledger.ts: a finished run's outcome is written once; later writes never change it. */
  | 'outcomes are final'
  /** ledger.ts: a claim is seen by every later load (nothing resets the ledger in this world). */
  | 'the ledger remembers'
  /** Liveness: with the chaos over, one healthy leader settles everything. */
  | 'quiescence'
  /** status.ts: consecutiveFailures counts each decided occasion once, by its last attempt. */
  | 'failure streak';

export interface Violation {
  readonly invariant: Invariant;
  readonly message: string;
}

export const violation = (invariant: Invariant, message: string): Violation => ({ invariant, message });

export interface LoggedRun {
  readonly key: string;
  readonly id: RunId;
  readonly podName: string;
  /** The furthest state ever committed: Claimed, Created, Running or Finished. */
  state: string;
  outcome: string | undefined;
  /** When the committed outcome says the run ended (ms). */
  endedAt: number | undefined;
  /** Which committed status first showed the outcome (its index), if one did. */
  shownIn: number | undefined;
  /** When the run was claimed (ms), if a committed claim said so. */
  claimedAt?: number | undefined;
}

export interface LoggedNotRun {
  readonly outcome: string;
  readonly firstTick: number;
  readonly lastTick: number;
  readonly count: number;
}

const STATES = ['Claimed', 'Created', 'Running', 'Finished'];
/** The `where` of records from the PostgreSQL-semantics store rather than a status. */
export const STORE = 'the ledger store';

export class OutcomeLog {
  readonly runs = new Map<string, LoggedRun>();
  readonly notRun = new Map<string, LoggedNotRun>();
  private readonly violations: Violation[];
  /** Runs whose outcome change was reported already (once is enough). */
  private readonly reported = new Set<string>();
  /** Committed statuses seen so far. */
  private statuses = 0;

  constructor(violations: Violation[]) {
    this.violations = violations;
  }

  /**
   * A run as some committed write showed it. `livePod` reads the API server at that instant, to
   * check a Lost outcome against it.
   */
  run(
    id: RunId,
    podName: string,
    state: string,
    outcome: string | undefined,
    where: string,
    livePod: (name: string) => V1Pod | undefined,
    endedAt?: number,
  ): void {
    const key = runKey(id);
    const known = this.runs.get(key);
    if (
      outcome !== undefined &&
      known?.outcome !== undefined &&
      known.outcome !== outcome &&
      !this.reported.has(key)
    ) {
      this.reported.add(key);
      this.violations.push(
        violation(
          'outcomes are final',
          `outcome changed: run ${podName} was ${known.outcome}, ${where} says ${outcome}`,
        ),
      );
    }
    if (outcome === 'Lost' && known?.outcome === undefined) {
      const pod = livePod(podName);
      if (pod !== undefined && mayStillRun(pod)) {
        this.violations.push(
          violation(
            'Lost only when gone',
            `Lost while its Pod may still run: ${podName} is ${pod.status?.phase ?? '?'} when ${where} records Lost`,
          ),
        );
      }
    }
    const shownIn = outcome === undefined || where === STORE ? undefined : this.statuses;
    if (known === undefined) {
      const ended = outcome === undefined ? undefined : endedAt;
      this.runs.set(key, { key, id, podName, state, outcome, endedAt: ended, shownIn });
      return;
    }
    if (STATES.indexOf(state) > STATES.indexOf(known.state)) known.state = state;
    if (known.outcome === undefined && outcome !== undefined) {
      known.endedAt = endedAt;
      known.shownIn = shownIn;
    }
    known.outcome ??= outcome;
  }

  notRunRecord(r: LoggedNotRun, where: string): void {
    const key = `${r.firstTick}/${r.outcome}`;
    const known = this.notRun.get(key);
    if (known === undefined) {
      this.notRun.set(key, r);
      return;
    }
    if ((known.lastTick !== r.lastTick || known.count !== r.count) && !this.reported.has(key)) {
      this.reported.add(key);
      this.violations.push(
        violation(
          'outcomes are final',
          `${r.outcome} record from ${iso(r.firstTick)} changed: was to ${iso(known.lastTick)} x${known.count}, ${where} says to ${iso(r.lastTick)} x${r.count}`,
        ),
      );
    }
  }

  /** Everything a committed status shows: its claims and its history. */
  status(
    status: ScheduledSingletonJobStatus | undefined,
    where: string,
    livePod: (name: string) => V1Pod | undefined,
  ): void {
    this.statuses++;
    for (const c of status?.ledger?.claims ?? []) {
      const id = idOf(c.tick, c.manualToken, c.attempt);
      if (id === undefined) continue;
      this.run(id, c.podName, c.state ?? 'Claimed', undefined, where, livePod);
      const logged = this.runs.get(runKey(id));
      if (logged !== undefined) logged.claimedAt ??= ms(c.claimedAt);
    }
    for (const r of status?.history ?? []) this.record(r, where, livePod);
  }

  private record(r: RunRecord, where: string, livePod: (name: string) => V1Pod | undefined): void {
    if (r.outcome === 'Skipped' || r.outcome === 'Missed') {
      const first = ms(r.tick);
      if (first === undefined) return;
      this.notRunRecord(
        { outcome: r.outcome, firstTick: first, lastTick: ms(r.lastTick) ?? first, count: r.count ?? 1 },
        where,
      );
      return;
    }
    const id = idOf(r.tick, r.manualToken, r.attempt);
    if (id === undefined || r.podName === undefined) return;
    this.run(id, r.podName, 'Finished', r.outcome, where, livePod, ms(r.completionTime));
  }
}

/** What one committed status said of the streak. */
export interface StreakCommit {
  readonly where: string;
  readonly consecutiveFailures: number | undefined;
  readonly cursor: { readonly completionTime: string; readonly podNames: readonly string[] } | undefined;
}

/**
 * Each committed streak against the one the whole committed record implies: the occasions
 * whose last attempt ended before the status's cursor, or at its instant and named by it,
 * each by the outcome of that last attempt, in the order they ended (ties in the order a
 * status first showed them, `shownIn`, then of their claims); Failed, Lost and TimedOut extend the streak,
 * Succeeded resets it, Replaced leaves it. Occasions whose last attempt has no committed
 * outcome (the bounded status history dropped it) are left out: the controller never saw
 * them end either.
 */
export function checkStreak(
  runs: Iterable<LoggedRun>,
  commits: readonly StreakCommit[],
  shownIn: (key: string) => number | undefined,
): Violation[] {
  const last = new Map<string, LoggedRun>();
  for (const r of runs) {
    const occasion = r.id.kind === 'scheduled' ? `t${r.id.tick.getTime()}` : `m${r.id.token}`;
    const known = last.get(occasion);
    if (known === undefined || r.id.attempt > known.id.attempt) last.set(occasion, r);
  }
  const seen = (r: LoggedRun): number => shownIn(r.key) ?? Number.MAX_SAFE_INTEGER;
  const finals = [...last.values()]
    .filter((r): r is LoggedRun & { endedAt: number } => r.outcome !== undefined && r.endedAt !== undefined)
    .sort(
      (a, b) =>
        a.endedAt - b.endedAt ||
        seen(a) - seen(b) ||
        (a.claimedAt ?? 0) - (b.claimedAt ?? 0) ||
        (a.podName < b.podName ? -1 : a.podName > b.podName ? 1 : 0),
    );
  const out: Violation[] = [];
  for (const c of commits) {
    if (c.cursor === undefined) {
      if ((c.consecutiveFailures ?? 0) !== 0)
        out.push(
          violation('failure streak', `${c.where}: ${c.consecutiveFailures ?? 0} failures and no cursor`),
        );
      continue;
    }
    const at = new Date(c.cursor.completionTime).getTime();
    const tied = new Set(c.cursor.podNames);
    let streak = 0;
    const counted: string[] = [];
    for (const r of finals) {
      if (r.endedAt > at || (r.endedAt === at && !tied.has(r.podName))) continue;
      counted.push(`${r.podName} ${r.outcome ?? '?'}`);
      if (r.outcome === 'Succeeded') streak = 0;
      else if (r.outcome === 'Failed' || r.outcome === 'Lost' || r.outcome === 'TimedOut') streak++;
    }
    if (streak !== c.consecutiveFailures) {
      out.push(
        violation(
          'failure streak',
          `${c.where}: consecutiveFailures ${String(c.consecutiveFailures)}, but the occasions decided up to ${c.cursor.completionTime} (${counted.slice(-6).join(', ')}) give ${streak}`,
        ),
      );
      return out; // the first is enough: later ones follow from it
    }
  }
  return out;
}

export interface TickCheck {
  readonly schedule: Schedule;
  /** Ticks after this instant belong to the job (its creation). */
  readonly from: Date;
  /** Ticks up to this instant must be accounted for. */
  readonly until: Date;
  readonly runs: Iterable<LoggedRun>;
  readonly notRun: Iterable<LoggedNotRun>;
  readonly maxAttempts: number;
  /**
   * The status-only ledger keeps the newest HISTORY_LIMIT entries (by tick) and says so: a
   * record of a tick older than the oldest one it still holds may have been dropped, even
   * before any write showed it. Ticks before `horizon` may therefore lack a record, and runs
   * of them an outcome. (They may still never have two.)
   */
  readonly horizon?: number | undefined;
}

/** Every tick in (from, until] ends in exactly one record, and every run in one outcome. */
export function checkTicks(c: TickCheck): { violations: Violation[]; forgotten: number } {
  const out: Violation[] = [];
  const fail = (message: string): void => {
    out.push(violation('one record per tick', message));
  };
  let forgotten = 0;
  const beyondHorizon = (tick: number): boolean => c.horizon !== undefined && tick < c.horizon;
  const cover = new Map<number, string[]>();
  for (
    let t = c.schedule.next(c.from);
    t !== null && t.getTime() <= c.until.getTime();
    t = c.schedule.next(t)
  ) {
    cover.set(t.getTime(), []);
  }
  const mark = (tick: number, what: string): void => {
    const list = cover.get(tick);
    if (list === undefined)
      fail(
        `${what} covers ${iso(tick)}, which is not a tick of the schedule in (${iso(c.from.getTime())}, ${iso(c.until.getTime())}]`,
      );
    else list.push(what);
  };

  const byTick = new Map<number, LoggedRun[]>();
  for (const r of c.runs) {
    if (r.outcome === undefined) {
      if (r.id.kind === 'scheduled' && beyondHorizon(r.id.tick.getTime())) forgotten++;
      else fail(`run ${r.podName} has no outcome at quiescence (state ${r.state})`);
    }
    if (r.id.kind !== 'scheduled') continue;
    const t = r.id.tick.getTime();
    byTick.set(t, [...(byTick.get(t) ?? []), r]);
  }
  for (const [tick, runs] of byTick) {
    mark(tick, `run ${runs.map((r) => r.podName).join('+')}`);
    const attempts = runs.map((r) => r.id.attempt).sort((a, b) => a - b);
    if (attempts.some((a, i) => a !== i + 1))
      fail(`tick ${iso(tick)} has attempts ${attempts.join(',')}, not 1..n`);
    if (attempts.length > c.maxAttempts)
      out.push(
        violation(
          'retries',
          `tick ${iso(tick)} ran ${attempts.length} attempts, more than maxAttempts ${c.maxAttempts}`,
        ),
      );
    const last = Math.max(...attempts);
    for (const r of runs) {
      if (r.id.attempt < last && (r.outcome === 'Succeeded' || r.outcome === 'Replaced')) {
        out.push(
          violation(
            'retries',
            `tick ${iso(tick)} was retried after attempt ${r.id.attempt} ended ${r.outcome}`,
          ),
        );
      }
    }
  }

  for (const n of c.notRun) {
    const what = `${n.outcome} ${iso(n.firstTick)}..${iso(n.lastTick)} x${n.count}`;
    const first = c.schedule.next(new Date(n.firstTick - 1000));
    if (first?.getTime() !== n.firstTick) {
      fail(`${what} starts off the schedule`);
      continue;
    }
    let count = 0;
    for (let t: Date | null = first; t !== null && t.getTime() <= n.lastTick; t = c.schedule.next(t)) {
      mark(t.getTime(), what);
      count++;
    }
    if (count !== n.count) fail(`${what} covers ${count} ticks, not ${n.count}`);
  }

  for (const [tick, list] of cover) {
    if (list.length === 0 && beyondHorizon(tick)) {
      forgotten++;
      continue;
    }
    if (list.length !== 1)
      fail(`tick ${iso(tick)} has ${list.length} records${list.length > 0 ? `: ${list.join('; ')}` : ''}`);
  }
  return { violations: out, forgotten };
}

/**
 * At most one Pod per run: a Pod name (a pure function of the run) is created once, and only
 * after the ledger committed the claim of its run. No Pod is created while another Pod of the
 * job could still run (plan.ts's contract). No window is excused.
 */
export function checkPods(created: readonly CreatedPod[]): Violation[] {
  const out: Violation[] = [];
  const seen = new Map<string, CreatedPod>();
  for (const [i, c] of created.entries()) {
    const before = seen.get(c.name);
    if (before !== undefined) {
      out.push(
        violation(
          'one Pod per run',
          `pod ${c.name} created twice: at ${iso(before.at)} by ${before.holder} and at ${iso(c.at)} by ${c.holder}`,
        ),
      );
    }
    seen.set(c.name, c);
    if (!c.claimed) {
      out.push(
        violation(
          'claim before Pod',
          `pod ${c.name} created at ${iso(c.at)} by ${c.holder} before any claim of its run`,
        ),
      );
    }
    const run = runOfName(c.name);
    if (run !== undefined && run.attempt > 1) {
      const later = created.slice(0, i).find((o) => (runOfName(o.name)?.tick ?? 0) > run.tick);
      if (later !== undefined) {
        out.push(
          violation(
            'retries',
            `pod ${c.name} retries tick ${iso(run.tick)} after ${later.name}, of a later tick, was created`,
          ),
        );
      }
    }
    if (c.liveOthers.length > 0) {
      out.push(
        violation(
          'one live Pod per job',
          `pod ${c.name} created at ${iso(c.at)} by ${c.holder} while ${c.liveOthers.join(', ')} could still run`,
        ),
      );
    }
  }
  return out;
}

/** Not terminal, and either not deleted or bound to a node (where the kubelet may still run it). */
export function mayStillRun(pod: V1Pod): boolean {
  if (isTerminalPod(pod)) return false;
  return pod.metadata?.deletionTimestamp === undefined || (pod.spec?.nodeName ?? '') !== '';
}

/** The tick (ms) and attempt a scheduled run's Pod name says: `<job>-<unix seconds>[-<attempt>]`. */
function runOfName(name: string): { tick: number; attempt: number } | undefined {
  const m = /-(\d{9,})(?:-(\d+))?$/.exec(name);
  if (m === null) return undefined;
  return { tick: Number(m[1]) * 1000, attempt: m[2] === undefined ? 1 : Number(m[2]) };
}

function idOf(
  tick: string | undefined,
  token: string | undefined,
  attempt: number | undefined,
): RunId | undefined {
  if (tick !== undefined) return { kind: 'scheduled', tick: new Date(tick), attempt: attempt ?? 1 };
  if (token !== undefined) return { kind: 'manual', token, attempt: attempt ?? 1 };
  return undefined;
}

function ms(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const t = new Date(s).getTime();
  return Number.isNaN(t) ? undefined : t;
}

export function iso(t: number): string {
  return new Date(t).toISOString().replace('.000Z', 'Z');
}
