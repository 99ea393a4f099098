// Claims and loads in batches: store.claimRuns and ClaimBatcher (one transaction and one fence
// check for many runs, with the same answers as claiming them one by one), store.loadJobs and
// LoadBatcher (two queries for many jobs, with the same answers as loading each alone).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { FencedError, LedgerUnavailableError } from '../../../src/ledger/postgres/errors.ts';
import { ClaimBatcher } from '../../../src/ledger/postgres/claim-batch.ts';
import { LoadBatcher } from '../../../src/ledger/postgres/load-batch.ts';
import type { ClaimResult, Fence, LoadedJob, RunClaim } from '../../../src/ledger/postgres/model.ts';
import { fence, newLease, openLedger, scheduledRun, settle, type LedgerFixture } from './fixture.ts';

const TICK = new Date('2026-12-01T10:00:00Z');

// One database for the file: every test works on jobs and Leases of its own.
let ledger: LedgerFixture;

before(async () => {
  ledger = await openLedger('ssj_ledger_batches');
});

after(async () => {
  await ledger.close();
});

describe('claiming runs in batches', () => {
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

/** Claims the job's run of 1 December at `hour` and records it Succeeded a minute later. */
async function claimFinished(leader: Fence, jobUid: string, hour: number): Promise<void> {
  const claimed = await ledger.store.claimRun(
    leader,
    scheduledRun(jobUid, new Date(Date.UTC(2026, 11, 1, hour))),
  );
  await ledger.store.recordRunState(leader, claimed.row.runKey, {
    state: 'Finished',
    outcome: 'Succeeded',
    reason: 'Completed',
    message: '',
    finishedAt: new Date(Date.UTC(2026, 11, 1, hour, 1)),
  });
}

/** `loaded` is what listUnfinishedRuns, listRuns, listTicksNotRun and latestTick give of the job. */
async function assertLoadedAsListed(
  store: LedgerFixture['store'],
  jobUid: string,
  loaded: LoadedJob,
  limit: number,
): Promise<void> {
  const byKey = (rows: readonly { runKey: string }[]): string[] => rows.map((r) => r.runKey).sort();
  const listed = [...(await store.listUnfinishedRuns(jobUid)), ...(await store.listRuns(jobUid, { limit }))];
  const expectedRuns = new Map(listed.map((r) => [r.runKey, r]));
  assert.deepEqual(byKey(loaded.runs), byKey([...expectedRuns.values()]));
  for (const row of loaded.runs) assert.deepEqual(row, expectedRuns.get(row.runKey));
  assert.deepEqual(loaded.ticksNotRun, await store.listTicksNotRun(jobUid, { limit }));
  assert.deepEqual(loaded.latestTick, await store.latestTick(jobUid));
}

describe('loading a job in two queries (store.loadJob)', () => {
  it('gives what listRuns, listUnfinishedRuns, listTicksNotRun and latestTick give', async () => {
    const lease = newLease();
    const leader = fence(lease, 1, 'a');
    const { store } = ledger;
    await store.raiseFence(lease, leader.term, leader.holder);
    const jobUid = randomUUID();
    const empty = (await store.loadJobs([jobUid], { limit: 3 })).get(jobUid);
    assert.deepEqual(empty, { runs: [], ticksNotRun: [], latestTick: null });

    // An old unfinished run, beyond the limit of recent runs, and six finished ones after it.
    const old = scheduledRun(jobUid, new Date('2026-12-01T00:00:00Z'));
    await store.claimRun(leader, old);
    for (let h = 1; h <= 6; h++) await claimFinished(leader, jobUid, h);
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
    const loaded = (await store.loadJobs([jobUid], { limit: 3 })).get(jobUid);
    assert.ok(loaded !== undefined, 'every job asked for has an entry');
    await assertLoadedAsListed(store, jobUid, loaded, 3);
    assert.equal(loaded.runs.length, 4, 'three recent runs and the old unfinished one');
    assert.equal(loaded.latestTick?.toISOString(), '2026-12-06T03:00:00.000Z');
  });
});

describe('loading jobs in batches (store.loadJobs, LoadBatcher)', () => {
  /** A job with one unfinished run, then `finished` finished runs and `ranges` ticks-not-run ranges. */
  const seedJob = async (leader: Fence, finished: number, ranges: number): Promise<string> => {
    const { store } = ledger;
    const jobUid = randomUUID();
    // Claimed first, so that it is older than the finished runs (claimed_at is the server's now).
    await store.claimRun(leader, scheduledRun(jobUid, new Date(Date.UTC(2026, 10, 30))));
    for (let h = 1; h <= finished; h++) await claimFinished(leader, jobUid, h);
    for (let d = 1; d <= ranges; d++) {
      await store.recordTicksNotRun(leader, {
        jobUid,
        namespace: 'ns',
        jobName: 'job',
        outcome: 'Missed',
        firstTick: new Date(Date.UTC(2026, 11, 2, d)),
        lastTick: new Date(Date.UTC(2026, 11, 2, d)),
        count: 1,
        reason: 'NoController',
        message: '',
      });
    }
    return jobUid;
  };

  it('gives each job what loading it alone gives, and an empty entry to a job with no rows', async () => {
    const lease = newLease();
    const leader = fence(lease, 1, 'a');
    const { store } = ledger;
    await store.raiseFence(lease, leader.term, leader.holder);
    const jobs = [await seedJob(leader, 5, 4), await seedJob(leader, 1, 0), await seedJob(leader, 0, 2)];
    const empty = randomUUID();
    const loaded = await store.loadJobs([...jobs, empty, jobs[0] as string], { limit: 3 });
    assert.deepEqual([...loaded.keys()].sort(), [...jobs, empty].sort());
    for (const uid of jobs) {
      const together = loaded.get(uid);
      assert.ok(together !== undefined);
      await assertLoadedAsListed(store, uid, together, 3);
    }
    assert.equal(
      loaded.get(jobs[0] as string)?.runs.length,
      4,
      'three recent runs and the old unfinished one',
    );
    assert.equal(loaded.get(jobs[0] as string)?.ticksNotRun.length, 3);
    assert.deepEqual(loaded.get(empty), { runs: [], ticksNotRun: [], latestTick: null });
  });

  it('the batcher reads the jobs asked for while one load is in flight in one batch, each seeing the writes made before it was asked for', async () => {
    const lease = newLease();
    const leader = fence(lease, 1, 'a');
    const { store } = ledger;
    await store.raiseFence(lease, leader.term, leader.holder);
    const batches: number[] = [];
    let release!: () => void;
    const firstLoadHeld = new Promise<void>((resolve) => (release = resolve));
    const counting = {
      loadJobs: async (uids: readonly string[], options: { readonly limit: number }) => {
        batches.push(uids.length);
        if (batches.length === 1) await firstLoadHeld;
        return store.loadJobs(uids, options);
      },
    };
    const batcher = new LoadBatcher(counting, 3);
    const jobs = Array.from({ length: 20 }, () => randomUUID());
    const first = batcher.load(jobs[0] as string);
    // Claimed while the first load is in flight: the later loads must see these runs.
    const rest: Promise<LoadedJob>[] = [];
    for (const uid of jobs.slice(1)) {
      await store.claimRun(leader, scheduledRun(uid, TICK));
      rest.push(batcher.load(uid));
    }
    release();
    const [head, ...tail] = await Promise.all([first, ...rest]);
    assert.deepEqual(batches, [1, 19]);
    assert.deepEqual(head, { runs: [], ticksNotRun: [], latestTick: null });
    tail.forEach((loaded, i) => {
      assert.equal(loaded.runs.length, 1);
      assert.equal(loaded.runs[0]?.jobUid, jobs[i + 1]);
      assert.deepEqual(loaded.latestTick, TICK);
    });
  });

  it('a batch that fails rejects each load in it, and the next batch is sent', async () => {
    let calls = 0;
    const failing = {
      loadJobs: async (uids: readonly string[], options: { readonly limit: number }) => {
        calls++;
        if (calls === 1) throw new LedgerUnavailableError('connection', undefined, new Error('down'));
        return ledger.store.loadJobs(uids, options);
      },
    };
    const batcher = new LoadBatcher(failing, 3);
    const [a, b] = await Promise.all([
      settle(batcher.load(randomUUID())),
      settle(batcher.load(randomUUID())),
    ]);
    assert.ok(!a.ok && a.error instanceof LedgerUnavailableError);
    assert.ok(!b.ok && b.error instanceof LedgerUnavailableError);
    const after = await batcher.load(randomUUID());
    assert.deepEqual(after, { runs: [], ticksNotRun: [], latestTick: null });
  });
});
