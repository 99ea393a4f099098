// Claims in batches (store.claimRuns, ClaimBatcher): one transaction and one fence check for
// many runs, with the same answers as claiming them one by one.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { FencedError } from '../../../src/ledger/postgres/errors.ts';
import { ClaimBatcher } from '../../../src/ledger/postgres/claim-batch.ts';
import type { ClaimResult, Fence, RunClaim } from '../../../src/ledger/postgres/model.ts';
import { fence, newLease, openLedger, scheduledRun, settle, type LedgerFixture } from './fixture.ts';

const TICK = new Date('2026-12-01T10:00:00Z');

describe('claiming runs in batches', () => {
  let ledger: LedgerFixture;

  before(async () => {
    ledger = await openLedger('ssj_ledger_claim_batch');
  });

  after(async () => {
    await ledger.close();
  });

  it('claimRuns claims the new runs and returns the existing ones unclaimed, in the order asked', async () => {
    const lease = newLease();
    const leader = fence(lease, 1, 'a');
    await ledger.store.raiseFence(lease, leader.term, leader.holder);
    const runs = Array.from({ length: 5 }, () => scheduledRun(randomUUID(), TICK));
    const earlier = await ledger.store.claimRun(leader, runs[2] as RunClaim);
    const results = await ledger.store.claimRuns(leader, runs);
    assert.deepEqual(
      results.map((r) => r.claimed),
      [true, true, false, true, true],
    );
    assert.deepEqual(
      results.map((r) => r.row.jobUid),
      runs.map((r) => r.jobUid),
    );
    assert.deepEqual(results[2]?.row, earlier.row);
    const again = await ledger.store.claimRuns(leader, runs);
    assert.ok(again.every((r) => !r.claimed));
  });

  it('a fenced batch claims none of its runs', async () => {
    const lease = newLease();
    const old = fence(lease, 1, 'old');
    await ledger.store.raiseFence(lease, old.term, old.holder);
    await ledger.store.raiseFence(lease, 2, 'new');
    const runs = Array.from({ length: 3 }, () => scheduledRun(randomUUID(), TICK));
    await assert.rejects(ledger.store.claimRuns(old, runs), FencedError);
    for (const run of runs) assert.deepEqual(await ledger.store.listRuns(run.jobUid), []);
  });

  it('the batcher puts claims made while one commits into one transaction, each with its own answer', async () => {
    const lease = newLease();
    const leader = fence(lease, 1, 'a');
    await ledger.store.raiseFence(lease, leader.term, leader.holder);
    const batches: number[] = [];
    let release!: () => void;
    const firstCommitHeld = new Promise<void>((resolve) => (release = resolve));
    const counting = {
      claimRuns: async (f: Fence, runs: readonly RunClaim[]): Promise<ClaimResult[]> => {
        batches.push(runs.length);
        if (batches.length === 1) await firstCommitHeld;
        return ledger.store.claimRuns(f, runs);
      },
    };
    const batcher = new ClaimBatcher(counting);
    const runs = Array.from({ length: 30 }, () => scheduledRun(randomUUID(), TICK));
    const first = batcher.claim(leader, runs[0] as RunClaim);
    // The others arrive one per turn of the event loop while the first transaction is in flight.
    const rest: Promise<ClaimResult>[] = [];
    for (const run of runs.slice(1)) {
      await new Promise((resolve) => setImmediate(resolve));
      rest.push(batcher.claim(leader, run));
    }
    release();
    const results = await Promise.all([first, ...rest]);
    assert.deepEqual(batches, [1, 29]);
    assert.ok(results.every((r) => r.claimed));
    assert.deepEqual(
      results.map((r) => r.row.jobUid),
      runs.map((r) => r.jobUid),
    );
  });

  it('the batcher never mixes fences, and a fenced claim fails alone', async () => {
    const lease = newLease();
    const current = fence(lease, 2, 'b');
    await ledger.store.raiseFence(lease, 1, 'a');
    await ledger.store.raiseFence(lease, current.term, current.holder);
    const batcher = new ClaimBatcher(ledger.store);
    const ok = scheduledRun(randomUUID(), TICK);
    const stale = scheduledRun(randomUUID(), TICK);
    const [good, bad] = await Promise.all([
      settle(batcher.claim(current, ok)),
      settle(batcher.claim(fence(lease, 1, 'a'), stale)),
    ]);
    assert.equal(good.ok && good.value.claimed, true);
    assert.ok(!bad.ok && bad.error instanceof FencedError);
    assert.deepEqual(await ledger.store.listRuns(stale.jobUid), []);
  });
});

describe('loading a job in two queries (store.loadJob)', () => {
  let ledger: LedgerFixture;

  before(async () => {
    ledger = await openLedger('ssj_ledger_load_job');
  });

  after(async () => {
    await ledger.close();
  });

  it('gives what listRuns, listUnfinishedRuns, listTicksNotRun and latestTick give', async () => {
    const lease = newLease();
    const leader = fence(lease, 1, 'a');
    const { store } = ledger;
    await store.raiseFence(lease, leader.term, leader.holder);
    const jobUid = randomUUID();
    const empty = await store.loadJob(jobUid, { limit: 3 });
    assert.deepEqual(empty, { runs: [], ticksNotRun: [], latestTick: null });

    // An old unfinished run, beyond the limit of recent runs, and six finished ones after it.
    const old = scheduledRun(jobUid, new Date('2026-12-01T00:00:00Z'));
    await store.claimRun(leader, old);
    for (let h = 1; h <= 6; h++) {
      const run = scheduledRun(jobUid, new Date(Date.UTC(2026, 11, 1, h)));
      const claimed = await store.claimRun(leader, run);
      await store.recordRunState(leader, claimed.row.runKey, {
        state: 'Finished',
        outcome: 'Succeeded',
        reason: 'Completed',
        message: '',
        finishedAt: new Date(Date.UTC(2026, 11, 1, h, 1)),
      });
    }
    for (let d = 2; d <= 6; d++) {
      await store.recordTicksNotRun(leader, {
        jobUid,
        namespace: 'ns',
        jobName: 'job',
        outcome: d % 2 === 0 ? 'Missed' : 'Skipped',
        firstTick: new Date(Date.UTC(2026, 11, d, 0)),
        lastTick: new Date(Date.UTC(2026, 11, d, 3)),
        count: 4,
        reason: 'NoController',
        message: '',
      });
    }
    const loaded = await store.loadJob(jobUid, { limit: 3 });
    const byKey = (rows: readonly { runKey: string }[]): string[] => rows.map((r) => r.runKey).sort();
    const expectedRuns = new Map(
      [...(await store.listUnfinishedRuns(jobUid)), ...(await store.listRuns(jobUid, { limit: 3 }))].map(
        (r) => [r.runKey, r],
      ),
    );
    assert.deepEqual(byKey(loaded.runs), byKey([...expectedRuns.values()]));
    assert.equal(loaded.runs.length, 4, 'three recent runs and the old unfinished one');
    for (const row of loaded.runs) assert.deepEqual(row, expectedRuns.get(row.runKey));
    assert.deepEqual(loaded.ticksNotRun, await store.listTicksNotRun(jobUid, { limit: 3 }));
    assert.deepEqual(loaded.latestTick, await store.latestTick(jobUid));
    assert.equal(loaded.latestTick?.toISOString(), '2026-12-06T03:00:00.000Z');
  });
});
