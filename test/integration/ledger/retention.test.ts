import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { runKey } from '../../../src/ledger/postgres/run-key.ts';
import { fence, newLease, openLedger, scheduledRun, type LedgerFixture } from './fixture.ts';

const HOUR = 3_600_000;
const base = Date.parse('2026-11-01T00:00:00Z');
const hour = (n: number): Date => new Date(base + n * HOUR);
const cutoff = new Date('2026-11-10T00:00:00Z');
const longAgo = new Date('2026-11-02T00:00:00Z');
const recently = new Date('2026-11-20T00:00:00Z');

describe('retention', () => {
  let ledger: LedgerFixture;
  const lease = newLease();
  const leader = fence(lease, 1, 'leader');

  before(async () => {
    ledger = await openLedger('ssj_ledger_retention');
    await ledger.store.raiseFence(lease, leader.term, leader.holder);
  });

  after(async () => {
    await ledger.close();
  });

  async function finishedRun(jobUid: string, tickHour: number, finishedAt: Date): Promise<string> {
    const { row } = await ledger.store.claimRun(leader, scheduledRun(jobUid, hour(tickHour)));
    await ledger.store.recordRunState(leader, row.runKey, {
      state: 'Finished',
      outcome: 'Succeeded',
      finishedAt,
    });
    return row.runKey;
  }

  it('deletes old finished runs and ranges, keeps unfinished runs, recent rows and each job’s latest accounted tick', async () => {
    const { store } = ledger;
    const jobA = randomUUID();
    const a1 = await finishedRun(jobA, 1, longAgo);
    const a2 = await finishedRun(jobA, 2, recently);
    const a3 = (await store.claimRun(leader, scheduledRun(jobA, hour(3)))).row.runKey; // never finished
    const a4 = await finishedRun(jobA, 4, longAgo);
    await store.recordTicksNotRun(leader, {
      jobUid: jobA,
      namespace: 'default',
      jobName: 'a',
      outcome: 'Skipped',
      firstTick: hour(5),
      lastTick: hour(6),
      count: 2,
      reason: 'Suspended',
      message: '',
    });

    // Job B ran only long ago: its latest run is the anchor of its schedule walk.
    const jobB = randomUUID();
    const b1 = await finishedRun(jobB, 1, longAgo);
    const b2 = await finishedRun(jobB, 2, longAgo);

    const jobC = randomUUID();
    const manual = await store.claimRun(leader, {
      kind: 'manual',
      jobUid: jobC,
      manualToken: 'now',
      attempt: 1,
      namespace: 'default',
      jobName: 'c',
      podName: 'c-m12345678',
    });
    await store.recordRunState(leader, manual.row.runKey, {
      state: 'Finished',
      outcome: 'Failed',
      finishedAt: longAgo,
    });

    const before = { a: await store.latestTick(jobA), b: await store.latestTick(jobB) };
    const deleted = await store.applyRetention(cutoff);
    assert.deepEqual(deleted, { runsDeleted: 4, ticksNotRunDeleted: 0 });

    const present = async (key: string): Promise<boolean> => (await store.getRun(key)) !== null;
    assert.equal(await present(a1), false, 'old finished run deleted');
    assert.equal(await present(a2), true, 'recently finished run kept');
    assert.equal(await present(a3), true, 'unfinished run kept however old');
    assert.equal(await present(a4), false, 'old finished run deleted');
    assert.equal((await store.listTicksNotRun(jobA)).length, 1, 'the range holding the latest tick is kept');
    assert.equal(await present(b1), false);
    assert.equal(await present(b2), true, 'the run holding the latest tick is kept');
    assert.equal(await present(manual.row.runKey), false, 'old finished manual run deleted');
    assert.deepEqual({ a: await store.latestTick(jobA), b: await store.latestTick(jobB) }, before);

    // A later tick makes the old range deletable.
    await finishedRun(jobA, 7, longAgo);
    assert.deepEqual(await store.applyRetention(cutoff), { runsDeleted: 0, ticksNotRunDeleted: 1 });
    assert.equal((await store.latestTick(jobA))?.toISOString(), hour(7).toISOString());
    assert.equal(await present(runKey(scheduledRun(jobA, hour(7)))), true);
  });
});
