import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MISSED_ONE_BY_ONE, TICK_PADDING_MS } from '../../../src/controller/plan.ts';
import { podName } from '../../../src/run/identity.ts';
import {
  CREATED,
  T,
  describeActions,
  job,
  ledger,
  notRun,
  planFor,
  pod,
  run,
  tickRun,
  withoutEvents,
} from './fixtures.ts';

const name = (tick: string, attempt = 1): string => podName('job', tickRun(tick, attempt));

describe('plan: due ticks', () => {
  it('before the first tick it does nothing and wakes just after the first tick', () => {
    const p = planFor({ now: '2026-11-22T09:59:50Z' });
    assert.deepEqual(p.actions, []);
    assert.equal(p.nextTick?.toISOString(), '2026-11-22T10:00:00.000Z');
    assert.equal(p.requeueAt?.getTime(), T('2026-11-22T10:00:00Z').getTime() + TICK_PADDING_MS);
  });

  it('a due tick is claimed before its Pod is created, under the name <job>-<unix seconds>', () => {
    const p = planFor({ now: '2026-11-22T10:00:00.100Z' });
    assert.deepEqual(withoutEvents(p.actions), [
      `claim ${name('2026-11-22T10:00:00Z')}`,
      `create ${name('2026-11-22T10:00:00Z')}`,
    ]);
    assert.equal(p.nextTick?.toISOString(), '2026-11-22T10:05:00.000Z');
  });

  it('a tick already claimed is never claimed again', () => {
    const r = run(tickRun('2026-11-22T10:00:00Z'));
    const p = planFor({ now: '2026-11-22T10:00:03Z', ledger: ledger([r]), pods: [pod(r.id)] });
    assert.deepEqual(withoutEvents(p.actions), []);
  });

  it('ticks that passed while no controller acted are Missed and only the latest runs', () => {
    const p = planFor({ now: '2026-11-22T10:10:01Z' });
    assert.deepEqual(withoutEvents(p.actions), [
      'Missed 2026-11-22T10:00:00.000Z x1 NoController',
      'Missed 2026-11-22T10:05:00.000Z x1 NoController',
      `claim ${name('2026-11-22T10:10:00Z')}`,
      `create ${name('2026-11-22T10:10:00Z')}`,
    ]);
    assert.ok(describeActions(p.actions).includes('event TicksMissed'));
  });

  it('after a long outage 100 missed ticks are recorded one by one and the rest as one summary', () => {
    const j = job({}, { schedule: '* * * * *' });
    const p = planFor({ job: j, now: '2026-11-23T10:00:30Z' }); // a day: 1441 ticks from 10:00 to 10:00 the next day
    const records = p.actions.flatMap((a) =>
      a.kind === 'ledger' && a.write.kind === 'notRun' ? [a.write.record] : [],
    );
    assert.equal(records.length, MISSED_ONE_BY_ONE + 1);
    assert.ok(records.slice(0, MISSED_ONE_BY_ONE).every((r) => r.count === 1));
    const summary = records[MISSED_ONE_BY_ONE]!;
    assert.equal(summary.count, 1441 - 1 - MISSED_ONE_BY_ONE);
    assert.equal(summary.firstTick.toISOString(), '2026-11-22T11:40:00.000Z');
    assert.equal(summary.lastTick.toISOString(), '2026-11-23T09:59:00.000Z');
    assert.equal(
      records.reduce((n, r) => n + r.count, 0),
      1441 - 1,
    );
    assert.ok(describeActions(p.actions).includes(`claim ${name('2026-11-23T10:00:00Z')}`));
    assert.ok(describeActions(p.actions).includes('event TooManyMissedTicks'));
  });

  it('a tick later than startingDeadlineSeconds is Missed and not run', () => {
    const j = job({}, { startingDeadlineSeconds: 30 });
    const p = planFor({ job: j, now: '2026-11-22T10:00:31Z' });
    assert.deepEqual(withoutEvents(p.actions), ['Missed 2026-11-22T10:00:00.000Z x1 DeadlineExceeded']);
  });

  it('a tick within startingDeadlineSeconds still runs', () => {
    const j = job({}, { startingDeadlineSeconds: 30 });
    const p = planFor({ job: j, now: '2026-11-22T10:00:29Z' });
    assert.deepEqual(withoutEvents(p.actions), [
      `claim ${name('2026-11-22T10:00:00Z')}`,
      `create ${name('2026-11-22T10:00:00Z')}`,
    ]);
  });

  it('a seconds schedule names each tick to the second', () => {
    const j = job({}, { schedule: '*/10 * * * * *' });
    const p = planFor({
      job: j,
      now: '2026-11-22T10:00:10.050Z',
      ledger: ledger([run(tickRun('2026-11-22T10:00:00Z'), { state: 'Finished', outcome: 'Succeeded' })]),
    });
    assert.deepEqual(withoutEvents(p.actions), [
      `claim ${name('2026-11-22T10:00:10Z')}`,
      `create ${name('2026-11-22T10:00:10Z')}`,
    ]);
  });

  it('while the ledger is unavailable nothing is claimed and the tick is retried soon', () => {
    const p = planFor({ now: '2026-11-22T10:00:00.100Z', ledgerAvailable: false });
    assert.deepEqual(withoutEvents(p.actions), []);
    assert.ok(p.requeueAt !== undefined && p.requeueAt.getTime() <= T('2026-11-22T10:00:01.100Z').getTime());
  });
});

describe('plan: concurrency', () => {
  const active = run(tickRun('2026-11-22T10:00:00Z'), { state: 'Running' });

  it('Forbid skips a tick while the previous run is active', () => {
    const p = planFor({
      now: '2026-11-22T10:05:00.1Z',
      ledger: ledger([active]),
      pods: [pod(active.id, { phase: 'Running' })],
    });
    assert.deepEqual(withoutEvents(p.actions), ['Skipped 2026-11-22T10:05:00.000Z x1 RunActive']);
  });

  it('Forbid also skips while a finished run’s Pod is still terminating', () => {
    const done = run(active.id, { state: 'Finished', outcome: 'TimedOut' });
    const p = planFor({
      now: '2026-11-22T10:05:00.1Z',
      ledger: ledger([done]),
      pods: [pod(done.id, { phase: 'Running', deleting: true })],
    });
    assert.deepEqual(withoutEvents(p.actions), [
      'Skipped 2026-11-22T10:05:00.000Z x1 RunActive',
      `release ${name('2026-11-22T10:00:00Z')}`,
    ]);
  });

  it('Replace records the active run as Replaced, deletes its Pod and claims the new tick without creating it yet', () => {
    const j = job({}, { concurrencyPolicy: 'Replace' });
    const p = planFor({
      job: j,
      now: '2026-11-22T10:05:00.1Z',
      ledger: ledger([active]),
      pods: [pod(active.id, { phase: 'Running' })],
    });
    assert.deepEqual(withoutEvents(p.actions), [
      `finished ${name('2026-11-22T10:00:00Z')} Replaced`,
      `delete ${name('2026-11-22T10:00:00Z')} Replaced`,
      `claim ${name('2026-11-22T10:05:00Z')}`,
      `release ${name('2026-11-22T10:00:00Z')}`,
    ]);
  });

  it('Replace: an open run beside a newer claim (a crash between the claim and the Replaced record) is replaced then', () => {
    const j = job({}, { concurrencyPolicy: 'Replace' });
    const claimed = run(tickRun('2026-11-22T10:05:00Z'), { state: 'Claimed' });
    const p = planFor({
      job: j,
      now: '2026-11-22T10:05:01Z',
      ledger: ledger([claimed, active]),
      pods: [pod(active.id, { phase: 'Running' })],
    });
    assert.deepEqual(withoutEvents(p.actions), [
      `finished ${name('2026-11-22T10:00:00Z')} Replaced`,
      `delete ${name('2026-11-22T10:00:00Z')} Replaced`,
      `release ${name('2026-11-22T10:00:00Z')}`,
    ]);
  });

  it('a claimed run’s Pod is created once the replaced Pod is gone', () => {
    const claimed = run(tickRun('2026-11-22T10:05:00Z'), { state: 'Claimed' });
    const replaced = run(active.id, { state: 'Finished', outcome: 'Replaced' });
    const p = planFor({ now: '2026-11-22T10:05:01Z', ledger: ledger([claimed, replaced]) });
    assert.deepEqual(withoutEvents(p.actions), [`create ${name('2026-11-22T10:05:00Z')}`]);
  });
});

describe('plan: observing runs', () => {
  const id = tickRun('2026-11-22T10:00:00Z');

  it('a claim whose Pod was never created (a crash between the two) creates the same Pod, not a new claim', () => {
    const p = planFor({ now: '2026-11-22T10:00:02Z', ledger: ledger([run(id, { state: 'Claimed' })]) });
    assert.deepEqual(withoutEvents(p.actions), [`create ${name('2026-11-22T10:00:00Z')}`]);
  });

  it('a claim is not created while another Pod of the job still lives', () => {
    const other = tickRun('2026-11-22T09:55:00Z');
    const p = planFor({
      now: '2026-11-22T10:00:02Z',
      ledger: ledger([run(id, { state: 'Claimed' }), run(other, { state: 'Finished', outcome: 'Replaced' })]),
      pods: [pod(other, { phase: 'Running', deleting: true })],
    });
    assert.deepEqual(withoutEvents(p.actions), [`release ${podName('job', other)}`]);
  });

  it('a Pod that starts running is recorded once as started', () => {
    const p = planFor({
      now: '2026-11-22T10:00:05Z',
      ledger: ledger([run(id)]),
      pods: [pod(id, { phase: 'Running', startedAt: T('2026-11-22T10:00:02Z') })],
    });
    assert.deepEqual(withoutEvents(p.actions), [`started ${name('2026-11-22T10:00:00Z')}`]);
    const again = planFor({
      now: '2026-11-22T10:00:06Z',
      ledger: ledger([run(id, { state: 'Running' })]),
      pods: [pod(id, { phase: 'Running' })],
    });
    assert.deepEqual(withoutEvents(again.actions), []);
  });

  const outcomes: { name: string; pod: Parameters<typeof pod>[1]; want: string }[] = [
    { name: 'a succeeded Pod ends its run Succeeded', pod: { phase: 'Succeeded' }, want: 'Succeeded' },
    { name: 'a failed Pod ends its run Failed', pod: { phase: 'Failed', reason: 'Error' }, want: 'Failed' },
    {
      name: 'a Pod failed by its own activeDeadlineSeconds ends its run Failed',
      pod: { phase: 'Failed', reason: 'DeadlineExceeded' },
      want: 'Failed',
    },
    { name: 'an evicted Pod ends its run Lost', pod: { phase: 'Failed', reason: 'Evicted' }, want: 'Lost' },
  ];
  for (const row of outcomes) {
    it(row.name, () => {
      const p = planFor({
        now: '2026-11-22T10:01:00Z',
        ledger: ledger([run(id, { state: 'Running' })]),
        pods: [pod(id, row.pod)],
      });
      assert.deepEqual(withoutEvents(p.actions), [
        `finished ${name('2026-11-22T10:00:00Z')} ${row.want}`,
        `release ${name('2026-11-22T10:00:00Z')}`,
      ]);
    });
  }

  it('a started run whose Pod a live read finds absent (its finalizer taken off) is Lost; one not read yet is left alone', () => {
    const running = ledger([run(id, { state: 'Running' })]);
    const p = planFor({ now: '2026-11-22T10:01:00Z', ledger: running });
    assert.deepEqual(withoutEvents(p.actions), [`finished ${name('2026-11-22T10:00:00Z')} Lost`]);
    assert.equal(p.ledger.runs[0]?.reason, 'PodRemoved');
    const unread = planFor({ now: '2026-11-22T10:01:00Z', ledger: running, absent: [] });
    assert.deepEqual(withoutEvents(unread.actions), []);
  });

  it('a Pod that is being deleted is waited for, not declared Lost', () => {
    const p = planFor({
      now: '2026-11-22T10:01:00Z',
      ledger: ledger([run(id, { state: 'Running' })]),
      pods: [pod(id, { phase: 'Running', deleting: true })],
    });
    assert.deepEqual(withoutEvents(p.actions), []);
  });

  it('a Pod still pending after maxPendingSeconds is TimedOut and deleted', () => {
    const j = job({}, { maxPendingSeconds: 60 });
    const p = planFor({ job: j, now: '2026-11-22T10:01:00Z', ledger: ledger([run(id)]), pods: [pod(id)] });
    assert.deepEqual(withoutEvents(p.actions), [
      `finished ${name('2026-11-22T10:00:00Z')} TimedOut`,
      `delete ${name('2026-11-22T10:00:00Z')} TimedOut`,
      `release ${name('2026-11-22T10:00:00Z')}`,
    ]);
  });

  it('a pending Pod within maxPendingSeconds wakes the controller at its deadline', () => {
    const j = job({}, { maxPendingSeconds: 60 });
    const p = planFor({ job: j, now: '2026-11-22T10:00:30Z', ledger: ledger([run(id)]), pods: [pod(id)] });
    assert.deepEqual(withoutEvents(p.actions), []);
    assert.equal(p.requeueAt?.toISOString(), '2026-11-22T10:01:00.000Z');
  });

  it('a Pod of the job that the ledger does not know is adopted and reported', () => {
    const p = planFor({ now: '2026-11-22T10:00:30Z', pods: [pod(id, { phase: 'Running' })] });
    const got = describeActions(p.actions);
    assert.ok(got.includes('event UnexpectedPod'));
    assert.ok(got.includes(`claim ${name('2026-11-22T10:00:00Z')}`));
    assert.ok(!got.some((a) => a.startsWith('create ')));
  });
});

describe('plan: retries', () => {
  const id = tickRun('2026-11-22T10:00:00Z');
  const failed = run(id, { state: 'Finished', outcome: 'Failed', finishedAt: T('2026-11-22T10:01:00Z') });
  const retrying = job({}, { maxAttempts: 3, backoffSeconds: 30 });

  it('a failed attempt is retried as the next attempt of the same tick after the backoff', () => {
    const p = planFor({
      job: retrying,
      now: '2026-11-22T10:01:30Z',
      ledger: ledger([failed]),
      pods: [pod(id, { phase: 'Failed' })],
    });
    assert.deepEqual(withoutEvents(p.actions), [
      `claim ${name('2026-11-22T10:00:00Z', 2)}`,
      `create ${name('2026-11-22T10:00:00Z', 2)}`,
      `release ${name('2026-11-22T10:00:00Z')}`,
    ]);
  });

  it('before the backoff has passed it waits until then', () => {
    const p = planFor({
      job: retrying,
      now: '2026-11-22T10:01:10Z',
      ledger: ledger([failed]),
      pods: [pod(id, { phase: 'Failed', tracked: false })],
    });
    assert.deepEqual(withoutEvents(p.actions), []);
    assert.equal(p.requeueAt?.toISOString(), '2026-11-22T10:01:30.000Z');
  });

  it('a retry never starts while the earlier attempt’s Pod may still run', () => {
    const timedOut = run(id, {
      state: 'Finished',
      outcome: 'TimedOut',
      finishedAt: T('2026-11-22T10:01:00Z'),
    });
    const p = planFor({
      job: retrying,
      now: '2026-11-22T10:02:00Z',
      ledger: ledger([timedOut]),
      pods: [pod(id, { deleting: true, bound: true, tracked: false })],
    });
    assert.deepEqual(withoutEvents(p.actions), []);
  });

  it('no attempt beyond maxAttempts', () => {
    const third = run(tickRun('2026-11-22T10:00:00Z', 3), {
      state: 'Finished',
      outcome: 'Failed',
      finishedAt: T('2026-11-22T10:03:00Z'),
    });
    const p = planFor({ job: retrying, now: '2026-11-22T10:04:00Z', ledger: ledger([third]) });
    assert.deepEqual(withoutEvents(p.actions), []);
  });

  it('a Succeeded or Replaced run is not retried', () => {
    for (const outcome of ['Succeeded', 'Replaced'] as const) {
      const p = planFor({
        job: retrying,
        now: '2026-11-22T10:04:00Z',
        ledger: ledger([run(id, { state: 'Finished', outcome, finishedAt: T('2026-11-22T10:01:00Z') })]),
      });
      assert.deepEqual(withoutEvents(p.actions), [], outcome);
    }
  });
});

describe('plan: suspend, resume and schedule edits', () => {
  it('suspending records when it began and claims nothing', () => {
    const j = job({}, { suspend: true });
    const p = planFor({ job: j, now: '2026-11-22T10:00:00.1Z' });
    assert.deepEqual(withoutEvents(p.actions), []);
    assert.equal(p.bookkeeping.suspendedSince?.toISOString(), '2026-11-22T10:00:00.100Z');
    assert.equal(p.requeueAt, undefined);
  });

  it('resuming records the suspended ticks as one Skipped range and fires no backlog', () => {
    const j = job({
      bookkeeping: {
        observedSchedule: '*/5 * * * *',
        observedTimeZone: 'UTC',
        scheduleAnchor: CREATED,
        suspendedSince: T('2026-11-22T09:59:40Z'),
      },
    });
    const p = planFor({ job: j, now: '2026-11-22T12:02:00Z' });
    assert.deepEqual(withoutEvents(p.actions), ['Skipped 2026-11-22T10:00:00.000Z x25 Suspended']);
    assert.equal(p.bookkeeping.suspendedSince, undefined);
    assert.equal(p.bookkeeping.scheduleAnchor?.toISOString(), '2026-11-22T12:02:00.000Z');
    assert.equal(p.nextTick?.toISOString(), '2026-11-22T12:05:00.000Z');
  });

  it('editing the schedule never fires a run at once: the new schedule counts from the edit', () => {
    const j = job(
      { bookkeeping: { observedSchedule: '0 0 * * *', observedTimeZone: 'UTC', scheduleAnchor: CREATED } },
      { schedule: '*/5 * * * *' },
    );
    const p = planFor({ job: j, now: '2026-11-22T11:02:00Z' });
    assert.deepEqual(withoutEvents(p.actions), []);
    assert.equal(p.bookkeeping.observedSchedule, '*/5 * * * *');
    assert.equal(p.bookkeeping.scheduleAnchor?.toISOString(), '2026-11-22T11:02:00.000Z');
    assert.equal(p.nextTick?.toISOString(), '2026-11-22T11:05:00.000Z');
  });

  it('on first sight the walk starts at the job’s creation', () => {
    const j = job({ bookkeeping: {} });
    const p = planFor({ job: j, now: '2026-11-22T10:00:00.2Z' });
    assert.equal(p.bookkeeping.scheduleAnchor?.toISOString(), CREATED.toISOString());
    assert.ok(describeActions(p.actions).includes(`claim ${name('2026-11-22T10:00:00Z')}`));
  });

  it('the walk starts after the latest tick the ledger accounts for, including Skipped and Missed', () => {
    const p = planFor({
      now: '2026-11-22T10:05:00.5Z',
      ledger: ledger([], [notRun({ firstTick: T('2026-11-22T10:05:00Z') })]),
    });
    assert.deepEqual(withoutEvents(p.actions), []);
  });
});

describe('plan: invalid specs and manual runs', () => {
  it('an invalid schedule claims nothing and reports the problem, but runs are still observed', () => {
    const id = tickRun('2026-11-22T09:55:00Z');
    const j = job({}, { schedule: '0 0 31 2 *' });
    const p = planFor({
      job: j,
      now: '2026-11-22T10:00:00Z',
      ledger: ledger([run(id, { state: 'Running' })]),
      pods: [pod(id, { phase: 'Succeeded' })],
    });
    assert.equal(p.problem?.kind, 'InvalidSchedule');
    assert.deepEqual(withoutEvents(p.actions), [
      `finished ${podName('job', id)} Succeeded`,
      `release ${podName('job', id)}`,
    ]);
  });

  it('an unknown time zone is InvalidTimeZone', () => {
    const p = planFor({ job: job({}, { timeZone: 'Mars/Olympus' }), now: '2026-11-22T10:00:00Z' });
    assert.equal(p.problem?.kind, 'InvalidTimeZone');
  });

  it('a template the API server refuses claims nothing', () => {
    const p = planFor({
      now: '2026-11-22T10:00:00.1Z',
      templateProblem: { kind: 'InvalidTemplate', message: 'bad' },
    });
    assert.equal(p.problem?.kind, 'InvalidTemplate');
    assert.deepEqual(withoutEvents(p.actions), []);
  });

  it('a new run-now token starts one manual run', () => {
    const p = planFor({ job: job({ runNowToken: 'abc' }), now: '2026-11-22T09:59:50Z' });
    assert.deepEqual(withoutEvents(p.actions), ['claim job-mba7816bf', 'create job-mba7816bf']);
  });

  it('a run-now token already claimed starts nothing', () => {
    const p = planFor({
      job: job({ runNowToken: 'abc' }),
      now: '2026-11-22T09:59:50Z',
      ledger: ledger([], [], ['abc']),
    });
    assert.deepEqual(withoutEvents(p.actions), []);
  });

  it('a manual run waits while another run is active', () => {
    const id = tickRun('2026-11-22T10:00:00Z');
    const p = planFor({
      job: job({ runNowToken: 'abc' }),
      now: '2026-11-22T10:02:00Z',
      ledger: ledger([run(id, { state: 'Running' })]),
      pods: [pod(id, { phase: 'Running' })],
    });
    assert.deepEqual(withoutEvents(p.actions), []);
  });

  it('a deleted job gets no actions', () => {
    const p = planFor({ job: job({ deleting: true }), now: '2026-11-22T10:00:00.1Z' });
    assert.deepEqual(p.actions, []);
  });
});

describe('plan: history limits', () => {
  it('finished Pods beyond the history limits are deleted, oldest first', () => {
    const ticks = ['09:00', '09:05', '09:10', '09:15', '09:20'].map((t) => tickRun(`2026-11-22T${t}:00Z`));
    const pods = [
      ...ticks.map((id) =>
        pod(id, { phase: 'Succeeded', finishedAt: (id as { tick: Date }).tick, tracked: false }),
      ),
      pod(tickRun('2026-11-22T08:00:00Z'), {
        phase: 'Failed',
        finishedAt: T('2026-11-22T08:00:10Z'),
        tracked: false,
      }),
      pod(tickRun('2026-11-22T08:05:00Z'), {
        phase: 'Failed',
        finishedAt: T('2026-11-22T08:05:10Z'),
        tracked: false,
      }),
    ];
    const runs = pods.map((p) =>
      run(p.run!, { state: 'Finished', outcome: p.phase === 'Succeeded' ? 'Succeeded' : 'Failed' }),
    );
    const p = planFor({ now: '2026-11-22T09:21:00Z', pods, ledger: ledger(runs) });
    assert.deepEqual(withoutEvents(p.actions).sort(), [
      `delete ${name('2026-11-22T08:00:00Z')} HistoryLimit`,
      `delete ${name('2026-11-22T09:00:00Z')} HistoryLimit`,
      `delete ${name('2026-11-22T09:05:00Z')} HistoryLimit`,
    ]);
  });
});

describe('plan: a spec that cannot be scheduled, then is fixed', () => {
  it('an invalid spec is reported by a Warning and remembered as the moment it broke', () => {
    const p = planFor({ job: job({}, { timeZone: 'Mars/Olympus' }), now: '2026-11-22T10:00:00Z' });
    assert.ok(describeActions(p.actions).includes('event InvalidTimeZone'));
    assert.equal(p.bookkeeping.invalidSince?.toISOString(), '2026-11-22T10:00:00.000Z');
  });

  it('fixing it records the ticks it missed as one Skipped range and runs none of them late', () => {
    const j = job({
      bookkeeping: {
        observedSchedule: '*/5 * * * *',
        observedTimeZone: 'UTC',
        scheduleAnchor: CREATED,
        invalidSince: T('2026-11-22T09:59:40Z'),
      },
    });
    const p = planFor({ job: j, now: '2026-11-22T10:17:00Z' });
    assert.deepEqual(withoutEvents(p.actions), ['Skipped 2026-11-22T10:00:00.000Z x4 InvalidSpec']);
    assert.equal(p.bookkeeping.invalidSince, undefined);
    assert.equal(p.nextTick?.toISOString(), '2026-11-22T10:20:00.000Z');
  });
});

describe('plan: a Pod created but not yet recorded', () => {
  const id = tickRun('2026-11-22T10:00:00Z');
  const claimed = run(id, { state: 'Claimed' });

  it('is not created again while no live read has said it is absent', () => {
    const p = planFor({ now: '2026-11-22T10:00:01Z', ledger: ledger([claimed]), absent: [] });
    assert.deepEqual(withoutEvents(p.actions), []);
  });

  it('is recorded as created once it is seen (the cache, the create response or a live read)', () => {
    const p = planFor({ now: '2026-11-22T10:00:01Z', ledger: ledger([claimed]), pods: [pod(id)] });
    assert.deepEqual(withoutEvents(p.actions), [`created ${claimed.podName}`]);
  });
});

describe('plan: the tracking finalizer', () => {
  const id = tickRun('2026-11-22T10:00:00Z');
  const at = (s: string) => T(`2026-11-22T${s}Z`);
  const deletion: { name: string; pod: Parameters<typeof pod>[1]; want: string[] }[] = [
    {
      name: 'a Pod deleted before it was bound to a node can no longer start: Lost, then released',
      pod: { phase: 'Pending', deleting: true, bound: false },
      want: [`finished ${name('2026-11-22T10:00:00Z')} Lost`, `release ${name('2026-11-22T10:00:00Z')}`],
    },
    {
      name: 'a bound Pod being deleted may still start: it is waited for, and keeps its finalizer',
      pod: { phase: 'Pending', deleting: true, bound: true },
      want: [],
    },
    {
      name: 'a running Pod being deleted still runs: it is waited for, and keeps its finalizer',
      pod: { phase: 'Running', deleting: true },
      want: [],
    },
    {
      name: 'a Pod that failed because it was deleted while running is Lost',
      pod: {
        phase: 'Failed',
        deleting: true,
        deletionRequestedAt: at('10:00:30'),
        finishedAt: at('10:00:31'),
      },
      want: [`finished ${name('2026-11-22T10:00:00Z')} Lost`, `release ${name('2026-11-22T10:00:00Z')}`],
    },
    {
      name: 'a Pod that had failed on its own before it was deleted keeps its real outcome, Failed',
      pod: {
        phase: 'Failed',
        deleting: true,
        deletionRequestedAt: at('10:00:40'),
        finishedAt: at('10:00:31'),
      },
      want: [`finished ${name('2026-11-22T10:00:00Z')} Failed`, `release ${name('2026-11-22T10:00:00Z')}`],
    },
    {
      name: 'a Pod that succeeded and was then deleted is Succeeded',
      pod: { phase: 'Succeeded', deleting: true, deletionRequestedAt: at('10:00:40') },
      want: [`finished ${name('2026-11-22T10:00:00Z')} Succeeded`, `release ${name('2026-11-22T10:00:00Z')}`],
    },
    {
      name: 'a failed Pod with a DisruptionTarget condition (preempted, its node gone) is Lost',
      pod: { phase: 'Failed', disrupted: true },
      want: [`finished ${name('2026-11-22T10:00:00Z')} Lost`, `release ${name('2026-11-22T10:00:00Z')}`],
    },
  ];
  it('a Pod deleted while running is Lost with reason PodDeleted, and the message names it', () => {
    const p = planFor({
      now: '2026-11-22T10:01:00Z',
      ledger: ledger([run(id, { state: 'Running' })]),
      pods: [
        pod(id, {
          phase: 'Failed',
          deleting: true,
          reason: 'Error',
          message: 'container exited with code 143',
          deletionRequestedAt: at('10:00:30'),
          finishedAt: at('10:00:31'),
        }),
      ],
    });
    const lost = p.ledger.runs[0];
    assert.equal(lost?.reason, 'PodDeleted');
    assert.equal(
      lost.message,
      `pod ${name('2026-11-22T10:00:00Z')} was deleted before it finished (container exited with code 143)`,
    );
  });

  it("a Pod evicted while running is Lost with the disruption's reason and message, not its killed container's", () => {
    const p = planFor({
      now: '2026-11-22T10:01:00Z',
      ledger: ledger([run(id, { state: 'Running' })]),
      pods: [
        pod(id, {
          phase: 'Failed',
          deleting: true,
          disrupted: true,
          disruptionReason: 'EvictionByEvictionAPI',
          disruptionMessage: 'Eviction API: evicting',
          reason: 'Error',
          message: 'container exited with code 137',
          deletionRequestedAt: at('10:00:30'),
          finishedAt: at('10:00:33'),
        }),
      ],
    });
    const lost = p.ledger.runs[0];
    assert.equal(lost?.outcome, 'Lost');
    assert.equal(lost.reason, 'EvictionByEvictionAPI');
    assert.equal(lost.message, 'Eviction API: evicting');
  });

  it("a Pod the kubelet evicted is Lost with the Pod's own reason, which names the stop", () => {
    const p = planFor({
      now: '2026-11-22T10:01:00Z',
      ledger: ledger([run(id, { state: 'Running' })]),
      pods: [
        pod(id, {
          phase: 'Failed',
          disrupted: true,
          disruptionReason: 'TerminationByKubelet',
          reason: 'Evicted',
          message: 'The node was low on resource: memory.',
          finishedAt: at('10:00:33'),
        }),
      ],
    });
    const lost = p.ledger.runs[0];
    assert.equal(lost?.reason, 'Evicted');
    assert.equal(lost.message, 'The node was low on resource: memory.');
  });

  for (const row of deletion) {
    it(row.name, () => {
      const p = planFor({
        now: '2026-11-22T10:01:00Z',
        ledger: ledger([run(id, { state: 'Running' })]),
        pods: [pod(id, row.pod)],
      });
      assert.deepEqual(withoutEvents(p.actions), row.want);
    });
  }

  it('a Pod whose run is still open keeps its finalizer', () => {
    const p = planFor({
      now: '2026-11-22T10:01:00Z',
      ledger: ledger([run(id, { state: 'Running' })]),
      pods: [pod(id, { phase: 'Running' })],
    });
    assert.ok(!describeActions(p.actions).some((a) => a.startsWith('release ')));
  });

  it('a tracked Pod whose run the bounded history dropped is released, not adopted', () => {
    const p = planFor({
      now: '2026-11-22T10:01:00Z',
      ledger: { runs: [], notRun: [], manualTokens: [], latestTick: T('2026-11-22T10:00:00Z') },
      pods: [pod(id, { phase: 'Succeeded' })],
    });
    assert.deepEqual(describeActions(p.actions), [`release ${name('2026-11-22T10:00:00Z')}`]);
  });

  it('a job being deleted records its Pods’ outcomes and releases them, and claims nothing', () => {
    const p = planFor({
      job: job({ deleting: true }),
      now: '2026-11-22T10:05:00.1Z',
      ledger: ledger([run(id, { state: 'Running' })]),
      pods: [pod(id, { phase: 'Pending', deleting: true, bound: false })],
    });
    assert.deepEqual(withoutEvents(p.actions), [
      `finished ${name('2026-11-22T10:00:00Z')} Lost`,
      `release ${name('2026-11-22T10:00:00Z')}`,
    ]);
  });
});

describe('plan: the anchor and durable outcomes', () => {
  it('the walk never starts before the ledger’s explicit latestTick, whatever its lists hold', () => {
    const l = { runs: [], notRun: [], manualTokens: [], latestTick: T('2026-11-22T10:05:00Z') };
    assert.deepEqual(withoutEvents(planFor({ now: '2026-11-22T10:07:00Z', ledger: l }).actions), []);
    assert.deepEqual(withoutEvents(planFor({ now: '2026-11-22T10:10:00.1Z', ledger: l }).actions), [
      'claim job-1795342200',
      'create job-1795342200',
    ]);
  });

  it('a failed attempt is not retried in the plan that records its outcome, only once that outcome is durable', () => {
    const id = tickRun('2026-11-22T10:00:00Z');
    const j = job({}, { maxAttempts: 3, backoffSeconds: 0 });
    const p = planFor({
      job: j,
      now: '2026-11-22T10:01:00Z',
      ledger: ledger([run(id, { state: 'Running' })]),
      pods: [pod(id, { phase: 'Failed', reason: 'Error', tracked: false })],
    });
    assert.deepEqual(withoutEvents(p.actions), [`finished ${name('2026-11-22T10:00:00Z')} Failed`]);
    assert.ok(p.requeueAt !== undefined && p.requeueAt.getTime() <= T('2026-11-22T10:01:01Z').getTime());
  });
});

describe('plan: a Pod the API server refuses', () => {
  const id = tickRun('2026-11-22T10:00:00Z');
  const claimed = run(id, { state: 'Claimed', claimedAt: T('2026-11-22T10:00:00Z') });
  const refusal = { message: 'pods "job-1" is forbidden: exceeded quota', since: T('2026-11-22T10:00:00Z') };

  it('is tried again until the deadline, and wakes the controller at it', () => {
    const j = job({}, { startingDeadlineSeconds: 60 });
    const p = planFor({
      job: j,
      now: '2026-11-22T10:00:30Z',
      ledger: ledger([claimed]),
      createRefusal: refusal,
    });
    assert.deepEqual(withoutEvents(p.actions), [`create ${claimed.podName}`]);
    assert.ok(p.requeueAt !== undefined && p.requeueAt.getTime() <= T('2026-11-22T10:01:00Z').getTime());
  });

  it('ends Failed with reason CreateRefused once startingDeadlineSeconds passes, and is not created late', () => {
    const j = job({}, { startingDeadlineSeconds: 60 });
    const p = planFor({
      job: j,
      now: '2026-11-22T10:01:00Z',
      ledger: ledger([claimed]),
      createRefusal: refusal,
    });
    assert.deepEqual(withoutEvents(p.actions), [`finished ${claimed.podName} Failed`]);
    assert.equal(p.ledger.runs[0]?.reason, 'CreateRefused');
  });

  it('without startingDeadlineSeconds the documented default applies', () => {
    const before = planFor({
      now: '2026-11-22T10:04:59Z',
      ledger: ledger([claimed]),
      createRefusal: refusal,
    });
    assert.deepEqual(withoutEvents(before.actions), [`create ${claimed.podName}`]);
    const after = planFor({ now: '2026-11-22T10:05:00Z', ledger: ledger([claimed]), createRefusal: refusal });
    assert.ok(withoutEvents(after.actions).includes(`finished ${claimed.podName} Failed`));
  });
});
