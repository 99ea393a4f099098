import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { statusSchema } from '../../../src/api/schema.ts';
import type { ScheduledSingletonJobStatus } from '../../../src/api/types.ts';
import type { Plan } from '../../../src/controller/plan.ts';
import { statusChanged, summarize } from '../../../src/controller/status.ts';
import type { JobView, PodView } from '../../../src/controller/snapshot.ts';
import { viewFromStatus } from '../../../src/ledger/status-ledger.ts';
import { CREATED, T, job, ledger, notRun, planFor, pod, run, tickRun } from './fixtures.ts';

// The API server refuses a status its schema does not allow, and a refused status write wedges
// the job: every summary must validate. x-kubernetes-* keywords and formats are the API
// server's business; ajv checks types, required fields, enums and ranges.
const validate = new Ajv({ strict: false, validateFormats: false, allErrors: true }).compile(statusSchema);

function statusOf(
  p: Plan,
  j: JobView = job(),
  pods: PodView[] = [],
  prior?: ScheduledSingletonJobStatus,
): ScheduledSingletonJobStatus {
  return summarize({
    job: j,
    prior,
    plan: p,
    pods,
    ledgerAvailable: true,
    term: 7,
    now: T('2026-11-22T12:00:00Z'),
  });
}

function assertValid(status: ScheduledSingletonJobStatus): void {
  const ok = validate(status);
  assert.ok(ok, JSON.stringify(validate.errors, null, 2));
}

describe('status summary', () => {
  const id = tickRun('2026-11-22T10:00:00Z');
  const scenarios: { name: string; plan: () => Plan }[] = [
    { name: 'a fresh job', plan: () => planFor({ now: '2026-11-22T09:59:50Z' }) },
    { name: 'a claimed run', plan: () => planFor({ now: '2026-11-22T10:00:00.1Z' }) },
    {
      name: 'missed ticks after an outage, with a summary',
      plan: () => planFor({ job: job({}, { schedule: '* * * * *' }), now: '2026-11-22T14:00:30Z' }),
    },
    {
      name: 'a suspension recorded at resume',
      plan: () =>
        planFor({
          job: job({
            bookkeeping: {
              observedSchedule: '*/5 * * * *',
              observedTimeZone: 'UTC',
              scheduleAnchor: CREATED,
              suspendedSince: CREATED,
            },
          }),
          now: '2026-11-22T12:02:00Z',
        }),
    },
    {
      name: 'a finished run and a Forbid skip',
      plan: () =>
        planFor({
          now: '2026-11-22T10:05:00.1Z',
          ledger: ledger([run(id, { state: 'Running' })]),
          pods: [pod(id, { phase: 'Running' })],
        }),
    },
    {
      name: 'a manual run',
      plan: () => planFor({ job: job({ runNowToken: 'tok' }), now: '2026-11-22T09:59:50Z' }),
    },
  ];
  for (const s of scenarios) {
    it(`${s.name}: the summary is a status the CRD's schema accepts`, () => {
      assertValid(statusOf(s.plan()));
    });
  }

  it('a condition keeps its lastTransitionTime while its status does not change', () => {
    const first = statusOf(planFor({ now: '2026-11-22T09:59:50Z' }));
    const again = summarize({
      job: job(),
      prior: first,
      plan: planFor({ now: '2026-11-22T09:59:55Z' }),
      pods: [],
      ledgerAvailable: true,
      term: 7,
      now: T('2026-11-22T13:00:00Z'),
    });
    const ready = (s: ScheduledSingletonJobStatus) => s.conditions?.find((c) => c.type === 'Ready');
    assert.equal(ready(again)?.lastTransitionTime, ready(first)?.lastTransitionTime);
  });

  it('the latest finished run that did not succeed makes Degraded True with its outcome as reason', () => {
    const failed = run(id, {
      state: 'Finished',
      outcome: 'Lost',
      finishedAt: T('2026-11-22T10:01:00Z'),
      message: 'gone',
    });
    const status = statusOf(planFor({ now: '2026-11-22T10:02:00Z', ledger: ledger([failed]) }));
    const degraded = status.conditions?.find((c) => c.type === 'Degraded');
    assert.equal(degraded?.status, 'True');
    assert.equal(degraded.reason, 'Lost');
    assert.equal(status.lastRun?.outcome, 'Lost');
    assertValid(status);
  });

  it('Ready is False with LedgerUnavailable while the ledger cannot be reached', () => {
    const status = summarize({
      job: job(),
      prior: undefined,
      plan: planFor({ now: '2026-11-22T09:59:50Z', ledgerAvailable: false }),
      pods: [],
      ledgerAvailable: false,
      term: 7,
      now: T('2026-11-22T09:59:50Z'),
    });
    const ready = status.conditions?.find((c) => c.type === 'Ready');
    assert.equal(ready?.status, 'False');
    assert.equal(ready.reason, 'LedgerUnavailable');
  });

  it('the status ledger reads back the runs and ticks-not-run that the summary wrote', () => {
    const finished = run(tickRun('2026-11-22T09:55:00Z'), {
      state: 'Finished',
      outcome: 'Succeeded',
      finishedAt: T('2026-11-22T09:55:20Z'),
      startedAt: T('2026-11-22T09:55:01Z'),
    });
    const active = run(id, { state: 'Running', startedAt: T('2026-11-22T10:00:01Z') });
    const skipped = notRun({ firstTick: T('2026-11-22T09:50:00Z'), outcome: 'Skipped', reason: 'RunActive' });
    const p = planFor({
      now: '2026-11-22T10:00:30Z',
      ledger: ledger([active, finished], [skipped], ['tok']),
      pods: [pod(id, { phase: 'Running' })],
    });
    const view = viewFromStatus(statusOf(p));
    assert.deepEqual(
      view.runs.map((r) => [r.podName, r.state, r.outcome]),
      [
        [active.podName, 'Running', undefined],
        [finished.podName, 'Finished', 'Succeeded'],
      ],
    );
    assert.deepEqual(
      view.notRun.map((n) => [n.outcome, n.firstTick.toISOString(), n.count]),
      [['Skipped', '2026-11-22T09:50:00.000Z', 1]],
    );
    assert.ok(view.manualTokens.includes('tok'));
  });
});

describe('status summary across a bounded history', () => {
  it('lastRun and lastSuccessfulTime survive when the history no longer holds a finished run', () => {
    const prior: ScheduledSingletonJobStatus = {
      lastSuccessfulTime: '2026-11-22T09:00:20Z',
      lastRun: { podName: 'job-1', attempt: 1, outcome: 'Succeeded', tick: '2026-11-22T09:00:00Z' },
    };
    const status = summarize({
      job: job({}, { schedule: '* * * * *' }),
      prior,
      plan: planFor({ job: job({}, { schedule: '* * * * *' }), now: '2026-11-22T14:00:30Z' }),
      pods: [],
      ledgerAvailable: true,
      term: 7,
      now: T('2026-11-22T14:00:30Z'),
    });
    assert.equal(status.lastSuccessfulTime, '2026-11-22T09:00:20Z');
    assert.equal(status.lastRun?.podName, 'job-1');
    assertValid(status);
  });
});

describe('status history', () => {
  it('keeps the 10 newest runs however many Missed ticks follow them', () => {
    const runs = Array.from({ length: 12 }, (_, i) =>
      run(tickRun(`2026-11-22T09:${String(i * 2).padStart(2, '0')}:00Z`), {
        state: 'Finished',
        outcome: 'Succeeded',
        finishedAt: T(`2026-11-22T09:${String(i * 2).padStart(2, '0')}:30Z`),
      }),
    );
    const missed = Array.from({ length: 30 }, (_, i) =>
      notRun({ firstTick: T(`2026-11-22T10:${String(i).padStart(2, '0')}:00Z`) }),
    );
    const status = statusOf(planFor({ now: '2026-11-22T10:31:00Z', ledger: ledger(runs, missed) }));
    const history = status.history ?? [];
    assert.equal(history.length, 20);
    assert.equal(history.filter((h) => h.outcome === 'Succeeded').length, 10);
    assert.equal(history[0]?.outcome, 'Missed');
    assertValid(status);
  });
});

describe('whether a status is worth writing', () => {
  // A quiet job: no claim, whose term would be its own news.
  const plan = (): Plan => planFor({ now: '2026-11-22T09:59:50Z' });
  const byTerm = (term: number, prior?: ScheduledSingletonJobStatus): ScheduledSingletonJobStatus =>
    summarize({
      job: job(),
      prior,
      plan: plan(),
      pods: [],
      ledgerAvailable: true,
      term,
      now: T('2026-11-22T12:00:00Z'),
    });

  it('a status that only a new term would change is not', () => {
    const written = byTerm(7);
    const next = byTerm(8, written);
    assert.equal(next.ledger?.term, 8);
    assert.equal(statusChanged(next, written), false);
  });

  it('a status that changes anything else is, and carries the new term', () => {
    const written = byTerm(7);
    const next = { ...byTerm(8, written), observedGeneration: (written.observedGeneration ?? 0) + 1 };
    assert.equal(statusChanged(next, written), true);
    assert.equal(next.ledger?.term, 8);
  });

  it('a first status is; the same status again is not, compared as the API server returns it', () => {
    const written = byTerm(7);
    assert.equal(statusChanged(written, undefined), true);
    assert.equal(statusChanged(byTerm(7, written), written), false);
    // Dates and undefined members compare as the API server returns them.
    assert.equal(
      statusChanged(written, JSON.parse(JSON.stringify(written)) as ScheduledSingletonJobStatus),
      false,
    );
  });
});
