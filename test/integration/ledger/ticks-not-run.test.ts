import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { TicksNotRunRecord } from '../../../src/ledger/postgres/model.ts';
import { fence, newLease, openLedger, scheduledRun, type LedgerFixture } from './fixture.ts';

const HOUR = 3_600_000;
const base = Date.parse('2026-11-23T00:00:00Z');
const hour = (n: number): Date => new Date(base + n * HOUR);

function suspension(jobUid: string, first: number, last: number): TicksNotRunRecord {
  return {
    jobUid,
    namespace: 'default',
    jobName: 'hourly',
    outcome: 'Skipped',
    firstTick: hour(first),
    lastTick: hour(last),
    count: last - first + 1,
    reason: 'Suspended',
    message: 'spec.suspend is true',
  };
}

describe('recording ticks not run', () => {
  let ledger: LedgerFixture;
  const lease = newLease();
  const leader = fence(lease, 1, 'leader');

  before(async () => {
    ledger = await openLedger('ssj_ledger_ticks_not_run');
    await ledger.store.raiseFence(lease, leader.term, leader.holder);
  });

  after(async () => {
    await ledger.close();
  });

  it('a growing suspension is one row: recording it again changes nothing, a later last tick extends it, an earlier one is ignored', async () => {
    const jobUid = randomUUID();
    const { store } = ledger;
    const first = await store.recordTicksNotRun(leader, suspension(jobUid, 1, 1));
    assert.equal(first.result, 'recorded');
    assert.equal(first.row.count, 1);

    assert.equal((await store.recordTicksNotRun(leader, suspension(jobUid, 1, 1))).result, 'unchanged');

    const grown = await store.recordTicksNotRun(leader, suspension(jobUid, 1, 5));
    assert.equal(grown.result, 'extended');
    assert.equal(grown.row.count, 5);
    assert.equal(grown.row.lastTick.toISOString(), hour(5).toISOString());
    assert.equal(
      grown.row.recordedAt.getTime(),
      first.row.recordedAt.getTime(),
      'recorded_at is the first record',
    );

    const again = await store.recordTicksNotRun(leader, suspension(jobUid, 1, 5));
    assert.equal(again.result, 'unchanged');
    const stale = await store.recordTicksNotRun(leader, suspension(jobUid, 1, 3));
    assert.equal(stale.result, 'unchanged');
    assert.equal(stale.row.lastTick.toISOString(), hour(5).toISOString());
    assert.equal(stale.row.count, 5);

    const rows = await store.listTicksNotRun(jobUid);
    assert.equal(rows.length, 1);
  });

  it('two replicas recording the same missed tick at once leave one row', async () => {
    const jobUid = randomUUID();
    const missed: TicksNotRunRecord = { ...suspension(jobUid, 2, 2), outcome: 'Missed', reason: 'NoLeader' };
    const results = await Promise.all(
      [ledger.openStore(), ledger.openStore()].map((s) => s.recordTicksNotRun(leader, missed)),
    );
    assert.deepEqual(results.map((r) => r.result).sort(), ['recorded', 'unchanged']);
    assert.equal((await ledger.store.listTicksNotRun(jobUid)).length, 1);
  });

  it('Skipped and Missed ranges are listed latest first', async () => {
    const jobUid = randomUUID();
    await ledger.store.recordTicksNotRun(leader, suspension(jobUid, 1, 3));
    await ledger.store.recordTicksNotRun(leader, {
      ...suspension(jobUid, 10, 10),
      outcome: 'Missed',
      reason: 'StartingDeadlineExceeded',
    });
    const rows = await ledger.store.listTicksNotRun(jobUid);
    assert.deepEqual(
      rows.map((r) => [r.outcome, r.lastTick.toISOString()]),
      [
        ['Missed', hour(10).toISOString()],
        ['Skipped', hour(3).toISOString()],
      ],
    );
    assert.equal((await ledger.store.listTicksNotRun(jobUid, { limit: 1 })).length, 1);
  });

  it('a range whose count disagrees with its ends is a programming error refused before the database', async () => {
    const jobUid = randomUUID();
    await assert.rejects(
      ledger.store.recordTicksNotRun(leader, { ...suspension(jobUid, 1, 3), count: 1 }),
      RangeError,
    );
    await assert.rejects(
      ledger.store.recordTicksNotRun(leader, { ...suspension(jobUid, 3, 1), count: 1 }),
      RangeError,
    );
  });

  it('latestTick is the latest tick accounted for by either a run or a range of ticks not run', async () => {
    const jobUid = randomUUID();
    const { store } = ledger;
    assert.equal(await store.latestTick(jobUid), null);
    await store.claimRun(leader, scheduledRun(jobUid, hour(4)));
    assert.equal((await store.latestTick(jobUid))?.toISOString(), hour(4).toISOString());
    await store.recordTicksNotRun(leader, suspension(jobUid, 5, 8));
    assert.equal((await store.latestTick(jobUid))?.toISOString(), hour(8).toISOString());
    await store.claimRun(leader, scheduledRun(jobUid, hour(9), 2));
    assert.equal((await store.latestTick(jobUid))?.toISOString(), hour(9).toISOString());
  });
});
