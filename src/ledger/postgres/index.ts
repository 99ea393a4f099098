// The PostgreSQL ledger: what the rest of the operator may import from this folder.

export { PostgresLedgerStore, type PostgresLedgerStoreOptions } from './store.ts';
export {
  FencedError,
  LedgerUnavailableError,
  classifyPgError,
  isLedgerUnavailable,
  type UnavailableReason,
} from './errors.ts';
export { runKey, tickSeconds } from './run-key.ts';
export {
  LEDGER_SCHEMA,
  MIGRATIONS_DIR,
  MIGRATIONS_TABLE,
  migrateLedger,
  type LedgerLogger,
} from './migrate.ts';
export type {
  ClaimResult,
  Fence,
  LeaseRef,
  LoadedJob,
  RetentionResult,
  RunClaim,
  RunIdentity,
  RunKind,
  RunOutcome,
  RunRow,
  RunState,
  RunStateResult,
  RunStateUpdate,
  TickNotRunOutcome,
  TicksNotRunRecord,
  TicksNotRunResult,
  TicksNotRunRow,
} from './model.ts';
