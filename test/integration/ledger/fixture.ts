// Shared set-up of the ledger integration suites: a migrated ledger in a database of the
// suite's own, fences, sample runs, and condition-based waits.

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { PostgresLedgerStore, type PostgresLedgerStoreOptions } from '../../../src/ledger/postgres/store.ts';
import type { Fence, LeaseRef, RunClaim } from '../../../src/ledger/postgres/model.ts';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.ts';

export interface LedgerFixture {
  readonly db: TestDatabase;
  readonly store: PostgresLedgerStore;
  /** Another store on the same database (its own pool): a second replica. */
  openStore(options?: Partial<PostgresLedgerStoreOptions>): PostgresLedgerStore;
  /** A plain pg client on the database, closed by close(). */
  sqlClient(): Promise<Client>;
  close(): Promise<void>;
}

export async function openLedger(prefix: string): Promise<LedgerFixture> {
  const db = await createTestDatabase(prefix);
  const stores: PostgresLedgerStore[] = [];
  const clients: Client[] = [];
  const openStore = (options: Partial<PostgresLedgerStoreOptions> = {}): PostgresLedgerStore => {
    const store = new PostgresLedgerStore({ connectionString: db.url, ...options });
    stores.push(store);
    return store;
  };
  const store = openStore();
  await store.migrate();
  return {
    db,
    store,
    openStore,
    async sqlClient() {
      const client = new Client({ connectionString: db.url, application_name: 'ssj-tests' });
      client.on('error', () => undefined);
      await client.connect();
      clients.push(client);
      return client;
    },
    async close() {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      await Promise.all(stores.map((s) => s.close()));
      await db.drop();
    },
  };
}

export function newLease(): LeaseRef {
  return { namespace: 'ssj-system', name: 'ssj-operator-leader', uid: randomUUID() };
}

export function fence(lease: LeaseRef, term: number, holder = `holder-${term}`): Fence {
  return { lease, term, holder };
}

export function scheduledRun(jobUid: string, tick: Date, attempt = 1): RunClaim {
  const seconds = tick.getTime() / 1000;
  return {
    kind: 'scheduled',
    jobUid,
    tick,
    attempt,
    namespace: 'default',
    jobName: 'nightly-report',
    podName: attempt === 1 ? `nightly-report-${seconds}` : `nightly-report-${seconds}-${attempt}`,
  };
}

/** Polls `condition` until it holds; fails with `what` after `timeoutMs`. */
export async function waitUntil(
  what: string,
  condition: () => Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(20);
  }
}

/** Waits until a session of `applicationName` is waiting for a lock another session holds or awaits. */
export async function waitUntilBlocked(
  observer: Client,
  applicationName: string,
  what: string,
): Promise<void> {
  await waitUntil(what, async () => {
    const result = await observer.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE application_name = $1 AND cardinality(pg_blocking_pids(pid)) > 0`,
      [applicationName],
    );
    return (result.rows[0]?.n ?? 0) > 0;
  });
}

/** Settles a promise into a value or its error, so a test can inspect a rejection later. */
export async function settle<T>(
  promise: Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}
