import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { runKey } from '../../../src/ledger/postgres/run-key.ts';
import type { RunClaim } from '../../../src/ledger/postgres/model.ts';
import { fence, newLease, openLedger, scheduledRun, type LedgerFixture } from './fixture.ts';

describe('claiming runs', () => {
  let ledger: LedgerFixture;
  const lease = newLease();
  const leader = fence(lease, 3, 'leader-a');

  before(async () => {
    ledger = await openLedger('ssj_ledger_claims');
    assert.equal(await ledger.store.raiseFence(lease, leader.term, leader.holder), 'raised');
  });

  after(async () => {
    await ledger.close();
  });

  it('a first claim records the run as Claimed with the leader term, and claiming it again returns that row unclaimed', async () => {
    const run = scheduledRun(randomUUID(), new Date('2026-11-23T01:00:00Z'));
    const first = await ledger.store.claimRun(leader, run);
    assert.equal(first.claimed, true);
    assert.equal(first.row.runKey, runKey(run));
    assert.equal(first.row.state, 'Claimed');
    assert.equal(first.row.outcome, null);
    assert.equal(first.row.holder, 'leader-a');
    assert.equal(first.row.term, 3);
    assert.equal(first.row.podName, run.podName);
    assert.equal(first.row.kind, 'scheduled');
    assert.equal(first.row.tick.toISOString(), '2026-11-23T01:00:00.000Z');

    const again = await ledger.store.claimRun(leader, { ...run, podName: 'some-other-name' });
    assert.equal(again.claimed, false);
    assert.deepEqual(again.row, first.row);
  });

  it('two replicas claiming the same tick at once: exactly one claims it, both see the same row', async () => {
    const replicas = [ledger.openStore(), ledger.openStore(), ledger.openStore()];
    const jobUid = randomUUID();
    for (let round = 0; round < 10; round++) {
      const run = scheduledRun(jobUid, new Date(Date.UTC(2026, 10, 23, 1, round)));
      const results = await Promise.all(replicas.map((store) => store.claimRun(leader, run)));
      assert.equal(results.filter((r) => r.claimed).length, 1, `round ${round}: exactly one claim`);
      const keys = new Set(results.map((r) => r.row.runKey));
      assert.equal(keys.size, 1);
      const claimedAt = new Set(results.map((r) => r.row.claimedAt.getTime()));
      assert.equal(claimedAt.size, 1, 'every replica sees the one row');
    }
    const rows = await ledger.store.listRuns(jobUid, { limit: 100 });
    assert.equal(rows.length, 10);
  });

  it('each attempt of a tick is a run of its own', async () => {
    const jobUid = randomUUID();
    const tick = new Date('2026-11-24T01:00:00Z');
    const one = await ledger.store.claimRun(leader, scheduledRun(jobUid, tick, 1));
    const two = await ledger.store.claimRun(leader, scheduledRun(jobUid, tick, 2));
    assert.equal(one.claimed && two.claimed, true);
    assert.notEqual(one.row.runKey, two.row.runKey);
    const listed = await ledger.store.listRuns(jobUid);
    assert.deepEqual(
      listed.map((r) => r.attempt),
      [2, 1],
      'newest first',
    );
  });

  it('a manual run is identified by its token: the same token is claimed once, another token is a new run', async () => {
    const jobUid = randomUUID();
    const manual = (token: string): RunClaim => ({
      kind: 'manual',
      jobUid,
      manualToken: token,
      attempt: 1,
      namespace: 'default',
      jobName: 'nightly-report',
      podName: `nightly-report-m${token.slice(0, 8)}`,
    });
    const first = await ledger.store.claimRun(leader, manual('run/now:1'));
    const same = await ledger.store.claimRun(leader, manual('run/now:1'));
    const other = await ledger.store.claimRun(leader, manual('run/now:2'));
    assert.equal(first.claimed, true);
    assert.equal(same.claimed, false);
    assert.equal(other.claimed, true);
    assert.equal(first.row.kind === 'manual' ? first.row.manualToken : '', 'run/now:1');
    assert.equal(first.row.runKey, `m/${jobUid}/run%2Fnow%3A1/1`);
    // A manual run is not a tick: it does not move the schedule's anchor.
    assert.equal(await ledger.store.latestTick(jobUid), null);
  });

  it('the schema itself refuses a second row for the same scheduled identity', async () => {
    const client = await ledger.sqlClient();
    const jobUid = randomUUID();
    await ledger.store.claimRun(leader, scheduledRun(jobUid, new Date('2026-11-25T01:00:00Z')));
    await assert.rejects(
      client.query(
        `INSERT INTO ssj.runs (run_key, job_uid, namespace, job_name, run_kind, tick, attempt, pod_name, state,
           holder, term, updated_holder, updated_term)
         VALUES ('forged-key', $1, 'default', 'nightly-report', 'scheduled', '2026-11-25T01:00:00Z', 1, 'x',
           'Claimed', 'h', 3, 'h', 3)`,
        [jobUid],
      ),
      { code: '23505' },
    );
  });

  it('a tick that is not a whole second is refused before reaching the database', async () => {
    await assert.rejects(
      ledger.store.claimRun(leader, scheduledRun(randomUUID(), new Date('2026-11-23T01:00:00.500Z'))),
      RangeError,
    );
  });

  it('listUnfinishedRuns returns claimed runs of one job or of all jobs, and getRun finds a run by key', async () => {
    const jobUid = randomUUID();
    const run = scheduledRun(jobUid, new Date('2026-11-26T01:00:00Z'));
    await ledger.store.claimRun(leader, run);
    const mine = await ledger.store.listUnfinishedRuns(jobUid);
    assert.deepEqual(
      mine.map((r) => r.runKey),
      [runKey(run)],
    );
    const all = await ledger.store.listUnfinishedRuns();
    assert.ok(all.some((r) => r.runKey === runKey(run)));
    assert.ok(all.length > mine.length);
    assert.equal((await ledger.store.getRun(runKey(run)))?.podName, run.podName);
    assert.equal(await ledger.store.getRun('s/no-such-job/1/1'), null);
  });
});
