import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'pg';
import { PostgresLedgerStore } from '../../../src/ledger/postgres/store.ts';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.ts';

describe('ledger migrations', () => {
  let db: TestDatabase;
  const stores: PostgresLedgerStore[] = [];

  before(async () => {
    db = await createTestDatabase('ssj_ledger_migrations');
  });

  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await db.drop();
  });

  it('three replicas migrating a fresh database at once all succeed and the schema is applied once', async () => {
    for (let i = 0; i < 3; i++) stores.push(new PostgresLedgerStore({ connectionString: db.url }));
    const applied = await Promise.all(stores.map((s) => s.migrate()));

    // One replica applied the migrations; the others waited for the lock and found nothing to do.
    const nonEmpty = applied.filter((names) => names.length > 0);
    assert.equal(nonEmpty.length, 1);
    assert.deepEqual(nonEmpty[0], ['0001_ledger-schema', '0002_term-columns']);

    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      const recorded = await client.query<{ name: string }>('SELECT name FROM ssj.pgmigrations ORDER BY id');
      assert.deepEqual(
        recorded.rows.map((r) => r.name),
        ['0001_ledger-schema', '0002_term-columns'],
      );
      const tables = await client.query<{ table_name: string }>(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = 'ssj' ORDER BY table_name`,
      );
      assert.deepEqual(
        tables.rows.map((r) => r.table_name),
        ['fence', 'pgmigrations', 'runs', 'ticks_not_run'],
      );
    } finally {
      await client.end();
    }
  });

  it('migrating an up-to-date database applies nothing', async () => {
    const store = new PostgresLedgerStore({ connectionString: db.url });
    stores.push(store);
    assert.deepEqual(await store.migrate(), []);
  });
});
