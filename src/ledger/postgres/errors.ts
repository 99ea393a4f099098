// The errors the PostgreSQL ledger lets out, classified once at this boundary.
//
// - FencedError: the write carried a term that is not the Lease's current one (or no fence row
//   exists). Nothing was written. The caller's term is over: stand down, do not retry.
// - LedgerUnavailableError: PostgreSQL could not be reached or did not answer in time
//   (refused, reset, terminated, shutting down or starting up, statement/connect timeout, out
//   of resources, read-only after a failover). Whether the transaction committed is unknown
//   when the connection broke during COMMIT: every write here is idempotent, so retry it with
//   backoff (and set Ready=False LedgerUnavailable meanwhile).
// - anything else is thrown as it is: a constraint violation or a bad argument is a bug.

import type { LeaseRef } from './model.ts';
import {
  FencedError as CommonFencedError,
  LedgerUnavailableError as CommonUnavailableError,
} from '../ledger.ts';

/** The common ledger's FencedError (../ledger.ts), with what the fence row said. */
export class FencedError extends CommonFencedError {
  override readonly name = 'FencedError';
  readonly lease: LeaseRef;
  readonly term: number;
  readonly holder: string;
  /** What the fence row holds now; null when the Lease has no fence row. */
  readonly current: { readonly term: number; readonly holder: string } | null;

  constructor(
    lease: LeaseRef,
    term: number,
    holder: string,
    current: { readonly term: number; readonly holder: string } | null,
  ) {
    const now = current === null ? 'no fence row' : `current term ${current.term} held by ${current.holder}`;
    super(
      `ledger write fenced: term ${term} of ${holder} on lease ${lease.namespace}/${lease.name} (${lease.uid}); ${now}`,
    );
    this.lease = lease;
    this.term = term;
    this.holder = holder;
    this.current = current;
  }
}

/** connection: could not connect or lost the connection; timeout: no answer in time;
 * server: the server refused work for now (shutting down, starting, read-only, out of resources). */
export type UnavailableReason = 'connection' | 'timeout' | 'server';

/** The common ledger's LedgerUnavailableError (../ledger.ts), with how it was classified. */
export class LedgerUnavailableError extends CommonUnavailableError {
  override readonly name = 'LedgerUnavailableError';
  readonly reason: UnavailableReason;
  /** The SQLSTATE or Node error code that classified it, when there was one. */
  readonly code: string | undefined;

  constructor(reason: UnavailableReason, code: string | undefined, cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(`ledger unavailable (${reason}${code === undefined ? '' : ` ${code}`}): ${detail}`, { cause });
    this.reason = reason;
    this.code = code;
  }
}

const NODE_CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
]);

// pg reports these without a code; matched on its own wording (pg 8.x).
const PG_CONNECTION_MESSAGES = [
  /connection terminated/i,
  /client has encountered a connection error/i,
  /connection already failed/i,
];
const PG_TIMEOUT_MESSAGES = [
  /timeout exceeded when trying to connect/i,
  /query read timeout/i,
  /connection timeout/i,
];

function classifySqlState(code: string): UnavailableReason | undefined {
  if (code.startsWith('08')) return 'connection'; // connection exception
  switch (code) {
    case '57014': // query_canceled: statement_timeout
    case '55P03': // lock_not_available: lock_timeout
      return 'timeout';
    case '25P03': // idle_in_transaction_session_timeout: our session was closed
      return 'connection';
    case '57P01': // admin_shutdown
    case '57P02': // crash_shutdown
    case '57P03': // cannot_connect_now (starting up, shutting down)
    case '25006': // read_only_sql_transaction: a standby after a failover
      return 'server';
    default:
      break;
  }
  if (code.startsWith('53') || code.startsWith('58')) return 'server'; // resources, system error
  return undefined;
}

function codeOf(error: object): string | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function find(error: unknown, depth: number): LedgerUnavailableError | undefined {
  if (depth > 5 || typeof error !== 'object' || error === null) return undefined;
  if (error instanceof LedgerUnavailableError) return error;
  const code = codeOf(error);
  if (code !== undefined) {
    if (NODE_CONNECTION_CODES.has(code)) return new LedgerUnavailableError('connection', code, error);
    // A Unix socket that is not there means the server is down; other ENOENTs are bugs.
    if (code === 'ENOENT' && (error as { syscall?: unknown }).syscall === 'connect') {
      return new LedgerUnavailableError('connection', code, error);
    }
    if (code === 'ETIMEDOUT') return new LedgerUnavailableError('timeout', code, error);
    if (/^[0-9A-Z]{5}$/.test(code)) {
      const reason = classifySqlState(code);
      if (reason !== undefined) return new LedgerUnavailableError(reason, code, error);
    }
  }
  if (error instanceof Error) {
    if (PG_TIMEOUT_MESSAGES.some((re) => re.test(error.message))) {
      return new LedgerUnavailableError('timeout', code, error);
    }
    if (PG_CONNECTION_MESSAGES.some((re) => re.test(error.message))) {
      return new LedgerUnavailableError('connection', code, error);
    }
  }
  // Node reports a refused connection to a host with several addresses as an AggregateError.
  if (error instanceof AggregateError) {
    for (const inner of error.errors) {
      const found = find(inner, depth + 1);
      if (found !== undefined) return new LedgerUnavailableError(found.reason, found.code, error);
    }
  }
  const cause = (error as { cause?: unknown }).cause;
  if (cause !== undefined) {
    const found = find(cause, depth + 1);
    if (found !== undefined) return new LedgerUnavailableError(found.reason, found.code, error);
  }
  return undefined;
}

/** The error to throw for what pg (or the migration runner) threw: a LedgerUnavailableError
 * when the database could not serve, otherwise the error itself. */
export function classifyPgError(error: unknown): unknown {
  return find(error, 0) ?? error;
}

export function isLedgerUnavailable(error: unknown): error is LedgerUnavailableError {
  return error instanceof LedgerUnavailableError;
}
