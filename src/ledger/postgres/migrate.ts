// Schema migrations of the PostgreSQL ledger, run with node-pg-migrate.
//
// Guarantees: the `.sql` files in src/ledger/migrations/ are applied in order, each pending
// one once, all pending ones in a single transaction, while holding a PostgreSQL advisory lock
// (session level, waiting rather than failing), so any number of replicas may call it at the
// same time: one applies, the others wait and then find nothing to do. Bookkeeping lives in
// `ssj.pgmigrations`; the schema `ssj` is created when missing. Refuses to run when a recorded
// migration is missing or out of order (checkOrder).
// Does not: roll back (down migrations exist for development only), or bound how long a
// replica waits for the lock other than by `timeoutMs` (the session's statement_timeout).

import { fileURLToPath } from 'node:url';
import { Client, type ClientConfig } from 'pg';
import { runner } from 'node-pg-migrate';
import { classifyPgError } from './errors.ts';

export const LEDGER_SCHEMA = 'ssj';
export const MIGRATIONS_TABLE = 'pgmigrations';
export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));

// The advisory lock's key ("ssjled" in ASCII). Advisory locks are per database; a key of our
// own keeps other node-pg-migrate users of the same database from queueing behind us.
export const MIGRATION_LOCK_ID = 0x73736a6c6564;

export interface LedgerLogger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export const SILENT_LOGGER: LedgerLogger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** Applies pending migrations; returns the names of those this call applied. */
export async function migrateLedger(
  config: ClientConfig,
  logger: LedgerLogger = SILENT_LOGGER,
): Promise<string[]> {
  const client = new Client(config);
  // A connection lost between queries is emitted, not thrown: keep it from crashing the
  // process; the next query fails and is classified below.
  client.on('error', (error: Error) => {
    logger.warn(`ledger migration connection error: ${error.message}`);
  });
  try {
    await client.connect();
    const applied = await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      // Only the .sql files are migrations; anything else in the folder is ignored.
      ignorePattern: '(\\..*|.*(?<!\\.sql))',
      schema: LEDGER_SCHEMA,
      createSchema: true,
      migrationsSchema: LEDGER_SCHEMA,
      createMigrationsSchema: true,
      migrationsTable: MIGRATIONS_TABLE,
      direction: 'up',
      singleTransaction: true,
      checkOrder: true,
      lockValue: MIGRATION_LOCK_ID,
      advisoryLockMode: 'wait',
      logger,
    });
    return applied.map((m) => m.name);
  } catch (error) {
    throw classifyPgError(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}
