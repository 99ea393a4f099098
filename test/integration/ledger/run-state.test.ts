import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { fence, newLease, openLedger, scheduledRun, type LedgerFixture } from './fixture.ts';
import type { RunRow } from '../../../src/ledger/postgres/model.ts';

describe('recording run states', () => {
  let ledger: LedgerFixture;
  const lease = newLease();
  const leader = fence(lease, 4, 'leader');
  let tickSeconds = Date.UTC(2026, 10, 23) / 1000;

  async function claimed(): Promise<RunRow> {
    tickSeconds += 60;
    const result = await ledger.store.claimRun(
      leader,
      scheduledRun(randomUUID(), new Date(tickSeconds * 1000)),
    );
    return result.row;
  }

  before(async () => {
    ledger = await openLedger('ssj_ledger_run_state');
    await ledger.store.raiseFence(lease, leader.term, leader.holder);
  });

  after(async () => {
    await ledger.close();
  });

  it('a run moves forward through Pending and Running to Finished, keeping its first start time', async () => {
    const run = await claimed();
    const startedAt = new Date('2026-11-23T01:00:02Z');
    const pending = await ledger.store.recordRunState(leader, run.runKey, {
      state: 'Pending',
      reason: 'PodPending',
    });
    assert.equal(pending.applied, true);
    assert.equal(pending.row.state, 'Pending');
    assert.equal(pending.row.reason, 'PodPending');

    const running = await ledger.store.recordRunState(leader, run.runKey, { state: 'Running', startedAt });
    assert.equal(running.applied, true);
    assert.equal(running.row.startedAt?.toISOString(), startedAt.toISOString());

    const finishedAt = new Date('2026-11-23T01:05:00Z');
    const finished = await ledger.store.recordRunState(leader, run.runKey, {
      state: 'Finished',
      outcome: 'Succeeded',
      reason: 'Completed',
      message: 'exit 0',
      startedAt: new Date('2026-11-23T01:00:09Z'),
      finishedAt,
    });
    assert.equal(finished.applied, true);
    assert.equal(finished.row.outcome, 'Succeeded');
    assert.equal(finished.row.finishedAt?.toISOString(), finishedAt.toISOString());
    assert.equal(
      finished.row.startedAt?.toISOString(),
      startedAt.toISOString(),
      'the first start time is kept',
    );
    assert.equal(finished.row.updatedTerm, 4);
  });

  it('an older observation arriving late does not move a run back', async () => {
    const run = await claimed();
    await ledger.store.recordRunState(leader, run.runKey, { state: 'Running' });
    const late = await ledger.store.recordRunState(leader, run.runKey, {
      state: 'Pending',
      reason: 'PodPending',
    });
    assert.equal(late.applied, false);
    assert.equal(late.row.state, 'Running');
    assert.equal(late.row.reason, null);
  });

  it('the first outcome wins: a Finished run never changes again', async () => {
    const run = await claimed();
    const lost = await ledger.store.recordRunState(leader, run.runKey, {
      state: 'Finished',
      outcome: 'Lost',
      reason: 'PodDeleted',
    });
    assert.equal(lost.applied, true);
    const second = await ledger.store.recordRunState(leader, run.runKey, {
      state: 'Finished',
      outcome: 'Succeeded',
    });
    assert.equal(second.applied, false);
    assert.equal(second.row.outcome, 'Lost');
    assert.equal(second.row.reason, 'PodDeleted');
    const back = await ledger.store.recordRunState(leader, run.runKey, { state: 'Running' });
    assert.equal(back.applied, false);
    assert.equal((await ledger.store.getRun(run.runKey))?.state, 'Finished');
  });

  it('two replicas finishing the same run at once with different outcomes: exactly one outcome is recorded', async () => {
    const replicas = [ledger.openStore(), ledger.openStore()];
    for (let round = 0; round < 5; round++) {
      const run = await claimed();
      const [a, b] = await Promise.all([
        replicas[0]!.recordRunState(leader, run.runKey, { state: 'Finished', outcome: 'Succeeded' }),
        replicas[1]!.recordRunState(leader, run.runKey, { state: 'Finished', outcome: 'TimedOut' }),
      ]);
      assert.equal([a, b].filter((r) => r.applied).length, 1, `round ${round}`);
      const winner = a.applied ? a.row.outcome : b.row.outcome;
      assert.equal(a.row.outcome, winner);
      assert.equal(b.row.outcome, winner);
    }
  });

  it('an outcome without Finished, or Finished without an outcome, is a programming error refused before the database', async () => {
    const run = await claimed();
    await assert.rejects(
      ledger.store.recordRunState(leader, run.runKey, { state: 'Running', outcome: 'Failed' }),
      TypeError,
    );
    await assert.rejects(ledger.store.recordRunState(leader, run.runKey, { state: 'Finished' }), TypeError);
    assert.equal((await ledger.store.getRun(run.runKey))?.state, 'Claimed');
  });

  it('recording the state of a run that was never claimed throws', async () => {
    await assert.rejects(
      ledger.store.recordRunState(leader, 's/never-claimed/1/1', { state: 'Running' }),
      /no run/,
    );
  });
});
