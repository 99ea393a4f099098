import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { FencedError } from '../../../src/ledger/postgres/errors.ts';
import { runKey } from '../../../src/ledger/postgres/run-key.ts';
import {
  fence,
  newLease,
  openLedger,
  scheduledRun,
  settle,
  waitUntilBlocked,
  type LedgerFixture,
} from './fixture.ts';

describe('the leader fence', () => {
  let ledger: LedgerFixture;

  before(async () => {
    ledger = await openLedger('ssj_ledger_fence');
  });

  after(async () => {
    await ledger.close();
  });

  it('raiseFence raises to a higher term, repeats idempotently for the same holder, and refuses a lower term or another holder at the same term', async () => {
    const lease = newLease();
    const { store } = ledger;
    assert.equal(await store.raiseFence(lease, 2, 'a'), 'raised', 'a new Lease row');
    assert.equal(await store.raiseFence(lease, 2, 'a'), 'raised', 'the same term and holder again');
    assert.equal(await store.raiseFence(lease, 2, 'b'), 'stale', 'the same term, another holder');
    assert.equal(await store.raiseFence(lease, 1, 'c'), 'stale', 'a lower term');
    assert.equal(await store.raiseFence(lease, 5, 'b'), 'raised', 'a higher term');
    assert.equal(await store.raiseFence(lease, 2, 'a'), 'stale', 'the old term after it was raised');
  });

  it('once a higher term is raised, every write of the lower term is refused with FencedError and writes nothing', async () => {
    const lease = newLease();
    const old = fence(lease, 1, 'old-leader');
    const current = fence(lease, 2, 'new-leader');
    const jobUid = randomUUID();
    const { store } = ledger;
    await store.raiseFence(lease, old.term, old.holder);
    const claimed = await store.claimRun(old, scheduledRun(jobUid, new Date('2026-11-23T01:00:00Z')));
    assert.equal(claimed.claimed, true);

    assert.equal(await store.raiseFence(lease, current.term, current.holder), 'raised');

    const late = scheduledRun(jobUid, new Date('2026-11-23T02:00:00Z'));
    const refused = await settle(store.claimRun(old, late));
    assert.ok(!refused.ok && refused.error instanceof FencedError);
    assert.equal(refused.error.name, 'FencedError');
    assert.deepEqual(refused.error.current, { term: 2, holder: 'new-leader' });
    assert.equal(refused.error.term, 1);
    assert.equal(await store.getRun(runKey(late)), null, 'the refused claim wrote nothing');

    await assert.rejects(store.recordRunState(old, claimed.row.runKey, { state: 'Running' }), FencedError);
    assert.equal(
      (await store.getRun(claimed.row.runKey))?.state,
      'Claimed',
      'the refused update changed nothing',
    );

    await assert.rejects(
      store.recordTicksNotRun(old, {
        jobUid,
        namespace: 'default',
        jobName: 'nightly-report',
        outcome: 'Skipped',
        firstTick: new Date('2026-11-23T03:00:00Z'),
        lastTick: new Date('2026-11-23T03:00:00Z'),
        count: 1,
        reason: 'Suspended',
        message: '',
      }),
      FencedError,
    );
    assert.deepEqual(await store.listTicksNotRun(jobUid), []);

    // The current term writes as usual.
    assert.equal((await store.claimRun(current, late)).claimed, true);
  });

  it('a write under a Lease that was never raised, or with the right term but another holder, is refused', async () => {
    const lease = newLease();
    const run = scheduledRun(randomUUID(), new Date('2026-11-23T01:00:00Z'));
    const none = await settle(ledger.store.claimRun(fence(lease, 1, 'a'), run));
    assert.ok(!none.ok && none.error instanceof FencedError);
    assert.equal(none.error.current, null);

    await ledger.store.raiseFence(lease, 1, 'a');
    await assert.rejects(ledger.store.claimRun(fence(lease, 1, 'impostor'), run), FencedError);
    assert.equal(await ledger.store.getRun(runKey(run)), null);
  });

  it('a Lease deleted and recreated (a new uid) starts a new fence row at its own terms instead of being refused', async () => {
    const first = newLease();
    const recreated = { ...first, uid: randomUUID() };
    assert.equal(await ledger.store.raiseFence(first, 7, 'a'), 'raised');
    assert.equal(
      await ledger.store.raiseFence(recreated, 0, 'b'),
      'raised',
      'term 0 of the new Lease is not below term 7 of the old',
    );
    const claim = await ledger.store.claimRun(
      fence(recreated, 0, 'b'),
      scheduledRun(randomUUID(), new Date('2026-11-23T01:00:00Z')),
    );
    assert.equal(claim.claimed, true);
    assert.equal(claim.row.term, 0);

    const client = await ledger.sqlClient();
    const rows = await client.query<{ lease_uid: string; term: string }>(
      'SELECT lease_uid, term FROM ssj.fence WHERE lease_uid = ANY ($1) ORDER BY term',
      [[first.uid, recreated.uid]],
    );
    assert.deepEqual(rows.rows, [
      { lease_uid: recreated.uid, term: '0' },
      { lease_uid: first.uid, term: '7' },
    ]);
  });

  it('takeNextTerm starts a new Lease at term 1, then takes one more than the row holds, each time for its holder, fencing the previous one', async () => {
    const lease = newLease();
    const { store } = ledger;
    assert.equal(await store.takeNextTerm(lease, 'a'), 1, 'a Lease without a row starts at 1');
    assert.equal(await store.takeNextTerm(lease, 'b'), 2);
    await assert.rejects(
      store.claimRun(fence(lease, 1, 'a'), scheduledRun(randomUUID(), new Date('2026-11-23T01:00:00Z'))),
      FencedError,
    );
    assert.equal(await store.takeNextTerm(lease, 'b'), 3, 'the same holder again still takes a new term');
    assert.equal(await store.raiseFence(lease, 9, 'c'), 'raised');
    assert.equal(await store.takeNextTerm(lease, 'd'), 10, 'it follows a raised term');
    assert.equal(await store.raiseFence(lease, 9, 'c'), 'stale', 'and fences the raised one');
    const claim = await store.claimRun(
      fence(lease, 10, 'd'),
      scheduledRun(randomUUID(), new Date('2026-11-23T01:00:00Z')),
    );
    assert.equal(claim.row.term, 10);
  });

  it('concurrent takeNextTerm calls from several replicas each get a distinct consecutive term', async () => {
    const lease = newLease();
    const replicas = [ledger.openStore(), ledger.openStore(), ledger.openStore(), ledger.openStore()];
    const terms = await Promise.all(replicas.map((store, i) => store.takeNextTerm(lease, `replica-${i}`)));
    assert.deepEqual(
      [...terms].sort((a, b) => a - b),
      [1, 2, 3, 4],
    );
    const winner = terms.indexOf(4);
    const run = scheduledRun(randomUUID(), new Date('2026-11-23T01:00:00Z'));
    const results = await Promise.all(
      replicas.map((store, i) => settle(store.claimRun(fence(lease, terms[i] ?? -1, `replica-${i}`), run))),
    );
    results.forEach((result, i) => {
      if (i === winner) assert.ok(result.ok && result.value.claimed, 'the last term claims');
      else assert.ok(!result.ok && result.error instanceof FencedError, `replica ${i} is fenced`);
    });
  });

  it('a write that starts while takeNextTerm is waiting queues behind it and is refused once it commits', async () => {
    const lease = newLease();
    const writer = ledger.openStore({ applicationName: 'ssj-test-writer-c' });
    const taker = ledger.openStore({ applicationName: 'ssj-test-taker-c' });
    const observer = await ledger.sqlClient();
    const inFlight = await ledger.sqlClient();
    const oldTerm = await taker.takeNextTerm(lease, 'old-leader');
    const old = fence(lease, oldTerm, 'old-leader');

    await inFlight.query('BEGIN');
    await inFlight.query(
      'SELECT term FROM ssj.fence WHERE lease_namespace = $1 AND lease_name = $2 AND lease_uid = $3 FOR SHARE',
      [lease.namespace, lease.name, lease.uid],
    );
    const taking = settle(taker.takeNextTerm(lease, 'new-leader'));
    await waitUntilBlocked(observer, 'ssj-test-taker-c', 'the take waits for the write in flight');

    const run = scheduledRun(randomUUID(), new Date('2026-11-23T01:00:00Z'));
    const claiming = settle(writer.claimRun(old, run));
    await waitUntilBlocked(observer, 'ssj-test-writer-c', 'the new write queues behind the waiting take');

    await inFlight.query('COMMIT');
    const taken = await taking;
    const claimed = await claiming;
    assert.ok(taken.ok);
    assert.equal(taken.value, oldTerm + 1);
    assert.ok(!claimed.ok && claimed.error instanceof FencedError, 'the old term is refused after the take');
    assert.deepEqual(claimed.error.current, { term: oldTerm + 1, holder: 'new-leader' });
    assert.equal(await ledger.store.getRun(runKey(run)), null);
  });

  it('a write that passed its fence check before a raise commits first: the raise waits for it', async () => {
    const lease = newLease();
    const writer = ledger.openStore({ applicationName: 'ssj-test-writer-a' });
    const raiser = ledger.openStore({ applicationName: 'ssj-test-raiser-a' });
    const observer = await ledger.sqlClient();
    const pause = await ledger.sqlClient();
    const old = fence(lease, 1, 'old-leader');
    await raiser.raiseFence(lease, old.term, old.holder);
    const run = scheduledRun(randomUUID(), new Date('2026-11-23T01:00:00Z'));

    // Hold the writer inside its transaction, after its fence check: an uncommitted row with the
    // same key makes its INSERT wait.
    await pause.query('BEGIN');
    await pause.query(
      `INSERT INTO ssj.runs (run_key, job_uid, namespace, job_name, run_kind, tick, attempt, pod_name, state,
         holder, term, updated_holder, updated_term)
       VALUES ($1, $2, 'default', 'nightly-report', 'scheduled', $3, 1, 'paused', 'Claimed', 'x', 0, 'x', 0)`,
      [runKey(run), run.jobUid, run.kind === 'scheduled' ? run.tick : null],
    );
    const claiming = settle(writer.claimRun(old, run));
    await waitUntilBlocked(observer, 'ssj-test-writer-a', 'the claim waits inside its transaction');

    const raising = settle(raiser.raiseFence(lease, 2, 'new-leader'));
    await waitUntilBlocked(
      observer,
      'ssj-test-raiser-a',
      'the raise waits for the claim that passed its check',
    );

    await pause.query('ROLLBACK');
    const claimed = await claiming;
    const raised = await raising;
    assert.ok(claimed.ok && claimed.value.claimed, 'the claim that was already past its check commits');
    assert.ok(raised.ok);
    assert.equal(raised.value, 'raised');
    assert.equal((await ledger.store.getRun(runKey(run)))?.term, 1);
    await assert.rejects(writer.recordRunState(old, runKey(run), { state: 'Pending' }), FencedError);
  });

  it('a write that starts while a raise is waiting queues behind it and is refused once the raise commits', async () => {
    const lease = newLease();
    const writer = ledger.openStore({ applicationName: 'ssj-test-writer-b' });
    const raiser = ledger.openStore({ applicationName: 'ssj-test-raiser-b' });
    const observer = await ledger.sqlClient();
    const inFlight = await ledger.sqlClient();
    const old = fence(lease, 1, 'old-leader');
    await raiser.raiseFence(lease, old.term, old.holder);

    // Another write of the old term is in flight: it holds the fence row FOR SHARE.
    await inFlight.query('BEGIN');
    await inFlight.query(
      'SELECT term FROM ssj.fence WHERE lease_namespace = $1 AND lease_name = $2 AND lease_uid = $3 FOR SHARE',
      [lease.namespace, lease.name, lease.uid],
    );
    const raising = settle(raiser.raiseFence(lease, 2, 'new-leader'));
    await waitUntilBlocked(observer, 'ssj-test-raiser-b', 'the raise waits for the write in flight');

    const run = scheduledRun(randomUUID(), new Date('2026-11-23T01:00:00Z'));
    const claiming = settle(writer.claimRun(old, run));
    await waitUntilBlocked(observer, 'ssj-test-writer-b', 'the new write queues behind the waiting raise');

    await inFlight.query('COMMIT');
    const raised = await raising;
    const claimed = await claiming;
    assert.ok(raised.ok);
    assert.equal(raised.value, 'raised');
    assert.ok(!claimed.ok && claimed.error instanceof FencedError, 'the old term is refused after the raise');
    assert.deepEqual(claimed.error.current, { term: 2, holder: 'new-leader' });
    assert.equal(await ledger.store.getRun(runKey(run)), null);
  });
});
