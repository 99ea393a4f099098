// The failure streak (status.consecutiveFailures, status.lastFailureTime): which outcomes extend
// it, which reset it, which leave it, and that each tick or manual run counts once however the
// status is rewritten, trimmed or replayed (docs/adr/0011-failure-streak.md).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ScheduledSingletonJobStatus } from '../../../src/api/types.ts';
import type { LedgerRun, LedgerView, RunOutcome } from '../../../src/ledger/ledger.ts';
import { viewFromStatus } from '../../../src/ledger/status-ledger.ts';
import { failureStreak, periodsSinceSuccess, summarize } from '../../../src/controller/status.ts';
import type { JobView, PodView } from '../../../src/controller/snapshot.ts';
import { parseSchedule, type Schedule } from '../../../src/schedule/index.ts';
import type { RunId } from '../../../src/run/identity.ts';
import { T, job, ledger, notRun, planFor, pod, run, tickRun } from './fixtures.ts';

const manualRun = (token: string, attempt = 1): RunId => ({ kind: 'manual', token, attempt });

/** A finished run of `id` that ended at `end`. */
function ended(id: RunId, outcome: RunOutcome, end: string, over: Partial<LedgerRun> = {}): LedgerRun {
  return run(id, {
    state: 'Finished',
    outcome,
    finishedAt: T(end),
    startedAt: id.kind === 'scheduled' ? new Date(id.tick.getTime() + 1000) : T(end),
    ...over,
  });
}

// The n-th tick after 10:00 of the default every-5-minutes schedule, and when its run ended.
function nth(n: number): { tick: string; end: string } {
  const at = Date.UTC(2026, 10, 22, 10, 0, 0) + n * 5 * 60_000;
  return { tick: new Date(at).toISOString(), end: new Date(at + 30_000).toISOString() };
}

function streakOf(outcomes: readonly RunOutcome[], maxAttempts = 1): ReturnType<typeof failureStreak> {
  const runs = outcomes.map((o, i) => ended(tickRun(nth(i).tick), o, nth(i).end));
  return failureStreak(ledger(runs), undefined, maxAttempts);
}

describe('the failure streak: which outcomes count', () => {
  const table: { outcomes: RunOutcome[]; streak: number; lastFailure?: number }[] = [
    { outcomes: [], streak: 0 },
    { outcomes: ['Failed'], streak: 1, lastFailure: 0 },
    { outcomes: ['Lost'], streak: 1, lastFailure: 0 },
    { outcomes: ['TimedOut'], streak: 1, lastFailure: 0 },
    { outcomes: ['Failed', 'Lost', 'TimedOut'], streak: 3, lastFailure: 2 },
    { outcomes: ['Failed', 'Failed', 'Succeeded'], streak: 0, lastFailure: 1 },
    { outcomes: ['Failed', 'Succeeded', 'Failed'], streak: 1, lastFailure: 2 },
    { outcomes: ['Failed', 'Replaced'], streak: 1, lastFailure: 0 },
    { outcomes: ['Failed', 'Replaced', 'Failed'], streak: 2, lastFailure: 2 },
    { outcomes: ['Succeeded', 'Replaced'], streak: 0 },
    { outcomes: ['Replaced'], streak: 0 },
  ];
  for (const row of table) {
    it(`[${row.outcomes.join(', ')}] gives a streak of ${row.streak}`, () => {
      const s = streakOf(row.outcomes);
      assert.equal(s.consecutiveFailures, row.streak);
      assert.equal(
        s.lastFailureTime,
        row.lastFailure === undefined ? undefined : nth(row.lastFailure).end.replace('.000Z', 'Z'),
      );
    });
  }

  it('a run refused by the API server past its deadline (Failed, reason CreateRefused) extends it', () => {
    const refused = ended(tickRun(nth(0).tick), 'Failed', nth(0).end, { reason: 'CreateRefused' });
    assert.equal(failureStreak(ledger([refused]), undefined, 1).consecutiveFailures, 1);
  });

  it('Skipped and Missed ticks neither extend nor reset it', () => {
    const failed = [0, 1].map((i) => ended(tickRun(nth(i).tick), 'Failed', nth(i).end));
    const records = [
      notRun({ firstTick: T(nth(2).tick), outcome: 'Skipped', reason: 'RunActive' }),
      notRun({ firstTick: T(nth(3).tick), lastTick: T(nth(5).tick), count: 3, reason: 'NoController' }),
    ];
    assert.equal(failureStreak(ledger(failed, records), undefined, 1).consecutiveFailures, 2);
    const prior = summarizeWith(ledger(failed), undefined);
    const after = summarizeWith(ledger(failed, records), prior);
    assert.equal(after.consecutiveFailures, 2);
  });

  it('manual runs count like scheduled ones, in the order runs ended', () => {
    const runs = [
      ended(tickRun(nth(0).tick), 'Failed', nth(0).end),
      ended(manualRun('a'), 'Lost', '2026-11-22T10:02:00Z'),
      ended(tickRun(nth(1).tick), 'Failed', nth(1).end),
    ];
    assert.equal(failureStreak(ledger(runs), undefined, 1).consecutiveFailures, 3);
    const reset = [...runs, ended(manualRun('b'), 'Succeeded', '2026-11-22T10:07:00Z')];
    assert.equal(failureStreak(ledger(reset), undefined, 1).consecutiveFailures, 0);
  });

  it('runs that ended in the same instant are taken in Pod-name order, so every ledger counts them alike', () => {
    const a = ended(tickRun(nth(0).tick), 'Failed', nth(1).end);
    const b = ended(tickRun(nth(1).tick), 'Succeeded', nth(1).end);
    assert.equal(failureStreak(ledger([a, b]), undefined, 1).consecutiveFailures, 0);
    assert.equal(failureStreak(ledger([b, a]), undefined, 1).consecutiveFailures, 0);
  });
});

describe('the failure streak: runs that end in the same instant', () => {
  it('a run seen after another that ended in the same instant still counts, whatever its name (found by the simulation)', () => {
    const at = '2026-11-22T10:00:13Z';
    const manual = ended(manualRun('a'), 'TimedOut', at);
    const first = failureStreak(ledger([manual]), undefined, 1);
    assert.equal(first.consecutiveFailures, 1);
    // A scheduled run's Pod name sorts before a manual one's; it ended in that instant too.
    const scheduled = ended(tickRun(nth(0).tick), 'Succeeded', at);
    assert.ok(scheduled.podName < manual.podName);
    const prior: ScheduledSingletonJobStatus = {
      consecutiveFailures: first.consecutiveFailures,
      ledger: first.cursor === undefined ? {} : { streakCursor: first.cursor },
    };
    const second = failureStreak(ledger([scheduled, manual]), prior, 1);
    assert.equal(second.consecutiveFailures, 0);
    assert.deepEqual(second.cursor?.podNames, [manual.podName, scheduled.podName]);
    // And neither counts again.
    const again = failureStreak(
      ledger([scheduled, manual]),
      { ...prior, ledger: { streakCursor: second.cursor } },
      1,
    );
    assert.deepEqual(again.cursor, second.cursor);
  });
});

describe('the failure streak: retries of one tick count once, by its final outcome', () => {
  const tick = nth(0).tick;
  const a1 = (o: RunOutcome) => ended(tickRun(tick, 1), o, '2026-11-22T10:00:30Z');
  const a2 = (o: RunOutcome) =>
    ended(tickRun(tick, 2), o, '2026-11-22T10:01:30Z', { claimedAt: T('2026-11-22T10:01:00Z') });
  const a3 = (o: RunOutcome) =>
    ended(tickRun(tick, 3), o, '2026-11-22T10:02:30Z', { claimedAt: T('2026-11-22T10:02:00Z') });
  const prior = (n: number): ScheduledSingletonJobStatus => ({ consecutiveFailures: n });

  it('a failed attempt that will be retried does not count yet, and holds the cursor', () => {
    const s = failureStreak(ledger([a1('Failed')]), prior(2), 3);
    assert.equal(s.consecutiveFailures, 2);
    assert.equal(s.cursor, undefined);
  });

  it('while the retry runs, the tick is still undecided', () => {
    const retry = run(tickRun(tick, 2), { state: 'Running', claimedAt: T('2026-11-22T10:01:00Z') });
    assert.equal(failureStreak(ledger([retry, a1('Failed')]), prior(2), 3).consecutiveFailures, 2);
  });

  it('a retry that succeeds makes the tick Succeeded: the streak resets, the failed attempt never counted', () => {
    const s = failureStreak(ledger([a2('Succeeded'), a1('Failed')]), prior(2), 3);
    assert.equal(s.consecutiveFailures, 0);
    assert.equal(s.lastFailureTime, undefined);
  });

  it('when the last allowed attempt fails, the tick counts once', () => {
    assert.equal(
      failureStreak(ledger([a3('Failed'), a2('Lost'), a1('Failed')]), prior(2), 3).consecutiveFailures,
      3,
    );
  });

  it('counted step by step, as each attempt ends, the tick still counts once', () => {
    let status: ScheduledSingletonJobStatus | undefined = prior(2);
    const views = [
      [a1('Failed')],
      [a2('Failed'), a1('Failed')],
      [a3('Failed'), a2('Failed'), a1('Failed')],
      [a3('Failed'), a2('Failed'), a1('Failed')],
    ];
    for (const runs of views) {
      const s = failureStreak(ledger(runs), status, 3);
      status = {
        consecutiveFailures: s.consecutiveFailures,
        ledger: s.cursor ? { streakCursor: s.cursor } : {},
      };
    }
    assert.equal(status.consecutiveFailures, 3);
  });

  it('a failed attempt the next tick supersedes (no retry follows) counts once', () => {
    const next = run(tickRun(nth(1).tick), { state: 'Claimed', claimedAt: T(nth(1).tick) });
    assert.equal(failureStreak(ledger([next, a1('Failed')]), prior(2), 3).consecutiveFailures, 3);
  });

  it('a manual run retried to success counts as one success', () => {
    const m1 = ended(manualRun('tok', 1), 'Failed', '2026-11-22T10:00:30Z', {
      claimedAt: T('2026-11-22T10:00:00Z'),
    });
    const m2 = ended(manualRun('tok', 2), 'Succeeded', '2026-11-22T10:01:30Z', {
      claimedAt: T('2026-11-22T10:01:00Z'),
    });
    assert.equal(failureStreak(ledger([m1]), prior(1), 2).consecutiveFailures, 1);
    assert.equal(failureStreak(ledger([m2, m1]), prior(1), 2).consecutiveFailures, 0);
  });
});

function summarizeWith(
  view: LedgerView,
  prior: ScheduledSingletonJobStatus | undefined,
  j: JobView = job(),
  now = '2026-11-22T12:00:00Z',
  pods: PodView[] = [],
): ScheduledSingletonJobStatus {
  const plan = planFor({ job: j, ledger: view, now, pods });
  return summarize({ job: j, prior, plan, pods, ledgerAvailable: true, term: 1, now: T(now) });
}

describe('the failure streak is exact across rewrites, trimming and replays', () => {
  const failedAt = (i: number) => ended(tickRun(nth(i).tick), 'Failed', nth(i).end);

  it('a status write that is lost and replayed from the same prior status counts the run once (PostgreSQL: the record is durable, the status is not)', () => {
    const before = summarizeWith(ledger([failedAt(0)]), undefined, job(), nth(0).end);
    assert.equal(before.consecutiveFailures, 1);
    // The ledger holds the second failure; the status write that would count it is lost...
    const view = ledger([failedAt(1), failedAt(0)]);
    const lost = summarizeWith(view, before, job(), nth(1).end);
    assert.equal(lost.consecutiveFailures, 2);
    // ... and the next reconcile plans again from the status that is really stored.
    const replayed = summarizeWith(view, before, job(), nth(1).end);
    assert.deepEqual(replayed, lost);
    // Once written, rewriting it any number of times counts nothing again.
    let status = replayed;
    for (let i = 0; i < 3; i++) status = summarizeWith(view, status, job(), nth(1).end);
    assert.equal(status.consecutiveFailures, 2);
    assert.equal(status.lastFailureTime, nth(1).end.replace('.000Z', 'Z'));
  });

  it('status-only: the status is the ledger, and reading it back and summarizing again counts nothing twice', () => {
    let status = summarizeWith(ledger([failedAt(1), failedAt(0)]), undefined, job(), nth(1).end);
    for (let i = 0; i < 3; i++) status = summarizeWith(viewFromStatus(status), status, job(), nth(1).end);
    assert.equal(status.consecutiveFailures, 2);
  });

  it('the streak outlives the bounded history: 25 failures in a row with at most 10 runs kept (status-only, through the planner)', () => {
    const j = job({}, { schedule: '* * * * *' });
    let status: ScheduledSingletonJobStatus | undefined = undefined;
    const start = Date.UTC(2026, 10, 22, 10, 0, 0);
    for (let i = 1; i <= 25; i++) {
      const tick = new Date(start + i * 60_000);
      const id = tickRun(tick.toISOString());
      // At the tick: the run is claimed (the status write is the claim).
      status = summarizeWith(viewFromStatus(status), status, j, new Date(tick.getTime() + 100).toISOString());
      // 30 s later its Pod has failed: the outcome is recorded.
      const failed = pod(id, { phase: 'Failed', finishedAt: new Date(tick.getTime() + 30_000) });
      status = summarizeWith(
        viewFromStatus(status),
        status,
        j,
        new Date(tick.getTime() + 31_000).toISOString(),
        [failed],
      );
    }
    assert.ok(status !== undefined);
    const runsKept = (status.history ?? []).filter((h) => h.podName !== undefined).length;
    assert.ok(runsKept <= 20 && runsKept < 25, `history holds ${runsKept} runs`);
    assert.equal(status.consecutiveFailures, 25);
    assert.equal(status.lastRun?.outcome, 'Failed');
  });

  it('PostgreSQL retention deleting the counted runs leaves the streak as it was', () => {
    const status = summarizeWith(ledger([failedAt(2), failedAt(1), failedAt(0)]), undefined);
    assert.equal(status.consecutiveFailures, 3);
    const afterRetention = summarizeWith(ledger([]), status);
    assert.equal(afterRetention.consecutiveFailures, 3);
    assert.equal(afterRetention.lastFailureTime, status.lastFailureTime);
    // An older, restored database shows runs the cursor is past: none counts again.
    const restored = summarizeWith(ledger([failedAt(1), failedAt(0)]), status);
    assert.equal(restored.consecutiveFailures, 3);
  });

  it('a status written before the streak existed counts the runs its history still shows', () => {
    const old = summarizeWith(ledger([failedAt(1), failedAt(0)]), undefined);
    const legacy: ScheduledSingletonJobStatus = structuredClone(old);
    delete legacy.consecutiveFailures;
    delete legacy.lastFailureTime;
    if (legacy.ledger !== undefined) delete legacy.ledger.streakCursor;
    const again = summarizeWith(viewFromStatus(legacy), legacy);
    assert.equal(again.consecutiveFailures, 2);
  });

  it('every summary carries the streak and a schema-valid cursor', () => {
    const status = summarizeWith(ledger([failedAt(0)]), undefined);
    assert.deepEqual(status.ledger?.streakCursor, {
      completionTime: nth(0).end.replace('.000Z', 'Z'),
      podNames: [failedAt(0).podName],
    });
    assert.equal(summarizeWith(ledger([]), undefined).consecutiveFailures, 0);
  });
});

describe('periods since the last success', () => {
  const schedule = (expr: string): Schedule => {
    const parsed = parseSchedule(expr, 'UTC');
    if (!parsed.ok) throw new Error(parsed.error.message);
    return parsed.schedule;
  };

  it('an hourly job last successful at 10:00:30 is 2.5 periods overdue at 12:30', () => {
    const p = periodsSinceSuccess(
      schedule('0 * * * *'),
      T('2026-11-22T10:00:30Z'),
      T('2026-11-22T12:30:30Z'),
    );
    assert.equal(p, 2.5);
  });

  it('no tick since the success: 0, nothing was missed yet', () => {
    assert.equal(
      periodsSinceSuccess(schedule('0 * * * *'), T('2026-11-22T10:00:30Z'), T('2026-11-22T10:59:00Z')),
      0,
    );
  });

  it('the period is the gap now falls in: a weekday job is measured by Friday to Monday (3 days), not by one day', () => {
    // Thursday 2026-11-19 succeeded; on Monday 2026-11-23 at 08:00 Friday's tick has passed and the
    // gap now falls in runs from Friday 09:00 to Monday 09:00.
    const since = T('2026-11-19T09:00:30Z');
    const now = T('2026-11-23T08:00:00Z');
    const p = periodsSinceSuccess(schedule('0 9 * * 1-5'), since, now);
    assert.equal(p, (now.getTime() - since.getTime()) / (72 * 3_600_000));
    assert.ok(p < 2, 'a weekend alone does not make a weekday job overdue');
  });
});
