import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { LedgerUnavailableError } from '../../../src/ledger/postgres/errors.ts';
import { PostgresLedgerStore } from '../../../src/ledger/postgres/store.ts';
import {
  createTestDatabase,
  startPrivateServer,
  type PrivateServer,
  type TestDatabase,
} from '../../support/postgres.ts';
import { fence, newLease, scheduledRun, settle } from './fixture.ts';

// These tests stop and start PostgreSQL, so they run their own instance.
describe('when PostgreSQL is unavailable', () => {
  let server: PrivateServer;
  let db: TestDatabase;
  const stores: PostgresLedgerStore[] = [];
  const warnings: string[] = [];
  const lease = newLease();
  const leader = fence(lease, 1, 'leader');
  const jobUid = randomUUID();

  const open = (statementTimeoutMs = 2000): PostgresLedgerStore => {
    const store = new PostgresLedgerStore({
      connectionString: db.url,
      statementTimeoutMs,
      connectionTimeoutMs: 2000,
      logger: {
        info: () => undefined,
        warn: (msg) => warnings.push(msg),
        error: (msg) => warnings.push(msg),
      },
    });
    stores.push(store);
    return store;
  };

  before(async () => {
    server = await startPrivateServer();
    db = await createTestDatabase('ssj_ledger_unavailable', server.url);
  });

  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await server.destroy();
  });

  it('every call fails with LedgerUnavailableError while the server is down, and works again once it is back', async () => {
    const store = open();
    await store.migrate();
    assert.equal(await store.raiseFence(lease, leader.term, leader.holder), 'raised');
    assert.equal(
      (await store.claimRun(leader, scheduledRun(jobUid, new Date('2026-11-23T01:00:00Z')))).claimed,
      true,
    );

    await server.stop();
    const calls: [string, () => Promise<unknown>][] = [
      ['claimRun', () => store.claimRun(leader, scheduledRun(jobUid, new Date('2026-11-23T02:00:00Z')))],
      ['recordRunState', () => store.recordRunState(leader, `s/${jobUid}/1/1`, { state: 'Running' })],
      ['raiseFence', () => store.raiseFence(lease, 2, 'other')],
      ['getRun', () => store.getRun('s/x/1/1')],
      ['latestTick', () => store.latestTick(jobUid)],
      ['ping', () => store.ping()],
      ['migrate', () => store.migrate()],
    ];
    for (const [name, call] of calls) {
      const result = await settle(call());
      assert.ok(!result.ok, `${name} fails`);
      assert.ok(result.error instanceof LedgerUnavailableError, `${name}: ${String(result.error)}`);
      assert.equal(result.error.reason, 'connection', name);
    }

    await server.start();
    const after = await store.claimRun(leader, scheduledRun(jobUid, new Date('2026-11-23T02:00:00Z')));
    assert.equal(after.claimed, true, 'the pool replaced its dead connections');
    assert.equal((await store.listRuns(jobUid)).length, 2);
  });

  it('a write stuck behind a lock longer than the statement timeout fails with LedgerUnavailableError (timeout) and writes nothing', async () => {
    const store = open(300);
    const blocker = new Client({ connectionString: db.url });
    blocker.on('error', () => undefined);
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE ssj.fence IN ACCESS EXCLUSIVE MODE');
      const run = scheduledRun(jobUid, new Date('2026-11-23T03:00:00Z'));
      const result = await settle(store.claimRun(leader, run));
      assert.ok(
        !result.ok && result.error instanceof LedgerUnavailableError,
        String(!result.ok && result.error),
      );
      assert.equal(result.error.reason, 'timeout');
      assert.equal(result.error.code, '57014');
      await blocker.query('ROLLBACK');
      assert.equal(await store.getRun(`s/${jobUid}/${Date.parse('2026-11-23T03:00:00Z') / 1000}/1`), null);
      // The same store works once the lock is gone.
      assert.equal((await store.claimRun(leader, run)).claimed, true);
    } finally {
      await blocker.end();
    }
  });
});
