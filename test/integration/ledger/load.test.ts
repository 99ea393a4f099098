import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { ScheduledSingletonJobStatus } from '../../../src/api/types.ts';
import type { Fence, JobRef, LedgerWrite } from '../../../src/ledger/ledger.ts';
import { openPostgresLedger, type OpenPostgresLedger } from '../../../src/ledger/postgres-ledger.ts';
import { nopLogger } from '../../../src/observability/log.ts';
import type { RunId } from '../../../src/run/identity.ts';
import { newLease, openLedger, type LedgerFixture } from './fixture.ts';

const job = (): JobRef => ({ namespace: 'default', name: 'nightly-report', uid: randomUUID() });
const tickAt = (iso: string): RunId => ({ kind: 'scheduled', tick: new Date(iso), attempt: 1 });
const token = (n: number): RunId => ({ kind: 'manual', token: `token-${n}`, attempt: 1 });

describe('the PostgreSQL ledger load: latestTick', () => {
  let fixture: LedgerFixture;
  let pg: OpenPostgresLedger;
  let fence: Fence;

  before(async () => {
    fixture = await openLedger('ssj_ledger_load');
    pg = await openPostgresLedger({
      connectionString: fixture.db.url,
      lease: newLease(),
      holder: 'leader',
      log: nopLogger,
    });
    fence = { term: pg.term() ?? 0, holder: 'leader' };
  });

  after(async () => {
    await pg.close();
    await fixture.close();
  });

  const write = (ref: JobRef, w: LedgerWrite): Promise<'ok' | 'finished'> => pg.ledger.write(ref, fence, w);

  async function runToSuccess(ref: JobRef, run: RunId, at: Date): Promise<void> {
    await write(ref, { kind: 'claim', run, podName: `pod-${randomUUID()}`, at });
    await write(ref, {
      kind: 'finished',
      run,
      outcome: 'Succeeded',
      reason: 'Completed',
      message: '',
      at,
    });
  }

  it('more than 20 manual runs after a scheduled run still return the scheduled tick', async () => {
    const ref = job();
    const tick = '2026-11-23T01:00:00Z';
    await runToSuccess(ref, tickAt(tick), new Date(tick));
    for (let n = 0; n < 25; n++)
      await runToSuccess(ref, token(n), new Date(Date.parse(tick) + (n + 1) * 1000));

    const view = await pg.ledger.load(ref, undefined);
    assert.ok(
      view.runs.every((r) => r.id.kind === 'manual'),
      'the scheduled run is no longer among the rows load returns',
    );
    assert.equal(view.latestTick?.toISOString(), new Date(tick).toISOString());
  });

  it('an empty database with a status that knows tick T returns T, wherever the status names it', async () => {
    const t = '2026-11-23T05:00:00Z';
    const statuses: [string, ScheduledSingletonJobStatus][] = [
      ['status.ledger.latestTick', { ledger: { latestTick: t } }],
      ['status.lastScheduleTime', { lastScheduleTime: t }],
      [
        'status.history',
        {
          history: [
            {
              tick: '2026-11-23T03:00:00Z',
              lastTick: t,
              count: 3,
              outcome: 'Skipped',
              reason: 'Suspended',
            },
          ],
        },
      ],
    ];
    for (const [where, status] of statuses) {
      const view = await pg.ledger.load(job(), status);
      assert.deepEqual(view.runs, [], where);
      assert.equal(view.latestTick?.toISOString(), new Date(t).toISOString(), where);
    }
    assert.equal((await pg.ledger.load(job(), undefined)).latestTick, undefined, 'no tick, nowhere');
  });

  it('is the later of the database’s latest tick and the status’s', async () => {
    const ref = job();
    await runToSuccess(ref, tickAt('2026-11-23T02:00:00Z'), new Date('2026-11-23T02:00:00Z'));
    await write(ref, {
      kind: 'notRun',
      record: {
        outcome: 'Missed',
        firstTick: new Date('2026-11-23T03:00:00Z'),
        lastTick: new Date('2026-11-23T04:00:00Z'),
        count: 2,
        reason: 'NoController',
        message: '',
        recordedAt: new Date('2026-11-23T04:00:10Z'),
      },
    });
    const older = await pg.ledger.load(ref, { lastScheduleTime: '2026-11-23T01:00:00Z' });
    assert.equal(older.latestTick?.toISOString(), '2026-11-23T04:00:00.000Z', 'the database knows more');
    const newer = await pg.ledger.load(ref, { ledger: { latestTick: '2026-11-23T06:00:00Z' } });
    assert.equal(newer.latestTick?.toISOString(), '2026-11-23T06:00:00.000Z', 'the status knows more');
  });
});
