/**
 * The PostgreSQL ledger behind the common interface (./ledger.ts): the source of truth, with
 * full history; the job's status is its summary.
 *
 * Contract, beyond ./ledger.ts:
 * - Start-up never fails because PostgreSQL is down: migrations and taking the term are
 *   retried in the background with backoff, and until they succeed every `load` throws
 *   LedgerUnavailableError, so the controller claims nothing and says so in `Ready`.
 * - The term comes from the fence row, never from a clock: once, before the first write, the
 *   ledger takes the Lease's next term in its own transaction (the row's term plus one), so a
 *   ledger opened later always fences one opened earlier, whatever either host's clock says.
 *   `term()` is undefined until then. Every write carries that term, whatever fence the
 *   caller passes; a write the store refuses (a newer term exists) makes every later call
 *   throw FencedError.
 * - `load` returns `latestTick` read explicitly: the later of the database's own latest
 *   accounted tick and what the job's status knows, so an empty or restored database, or a
 *   switch from the status-only ledger, never makes a finished tick due again.
 * - Retention deletes finished runs and ticks-not-run records older than the retention period,
 *   hourly; an unfinished run is never deleted.
 *
 * Does not: elect a leader. Two processes on one Lease each take a term; only the later one
 * writes, the earlier one stands down at its next write (it is not told sooner).
 */
import type { ScheduledSingletonJobStatus } from '../api/types.ts';
import type { Logger } from '../observability/log.ts';
import { tickSeconds } from '../run/identity.ts';
import type { RunId } from '../run/identity.ts';
import {
  FencedError,
  LedgerUnavailableError,
  type Fence,
  type JobRef,
  type Ledger,
  type LedgerRun,
  type LedgerView,
  type LedgerWrite,
  type NotRunRecord,
} from './ledger.ts';
import { isLedgerUnavailable, PostgresLedgerStore, runKey, type LedgerLogger } from './postgres/index.ts';
import type { Fence as StoreFence, LeaseRef, RunIdentity, RunRow, TicksNotRunRow } from './postgres/model.ts';
import { viewFromStatus } from './status-ledger.ts';
import { ClaimBatcher } from './postgres/claim-batch.ts';
import { LoadBatcher } from './postgres/load-batch.ts';

/** Enough recent runs and records for retries, history limits and the status summary. */
const RECENT = 20;
const RETENTION_INTERVAL_MS = 60 * 60 * 1000;

export interface PostgresLedgerOptions {
  readonly connectionString: string;
  readonly lease: LeaseRef;
  /** This process's identity (unique per process): the fence row's holder while its term lasts. */
  readonly holder: string;
  readonly log: Logger;
  /** 0 keeps everything. */
  readonly retentionMs?: number;
  /** Called once, with the term, when the ledger has taken it. */
  readonly onTerm?: (term: number) => void;
  /**
   * Where terms come from. 'own' (no leader election): the ledger takes the fence row's next
   * number at start-up, and every write carries it. 'lease': the leader election's terms; each
   * is raised with `raise` when it begins, and every write carries the term it is given.
   */
  readonly terms?: 'own' | 'lease';
}

export interface OpenPostgresLedger {
  readonly ledger: Ledger;
  /** The ledger serves this term's writes: it took its term and PostgreSQL last answered. */
  readonly ready: () => boolean;
  /** This process's term, once taken; undefined until then ('own' terms only). */
  readonly term: () => number | undefined;
  /**
   * Makes a leader Lease's term the fence row's current one (keyed by the Lease's UID), in its
   * own transaction, before the term acts. False when the row holds a newer term.
   */
  readonly raise: (fence: Fence) => Promise<boolean>;
  readonly close: () => Promise<void>;
}

type State =
  | { readonly kind: 'starting' }
  /** Migrated, serving the leader election's terms. */
  | { readonly kind: 'lease' }
  | { readonly kind: 'ready'; readonly fence: StoreFence }
  | { readonly kind: 'fenced'; readonly fence: StoreFence };

export async function openPostgresLedger(options: PostgresLedgerOptions): Promise<OpenPostgresLedger> {
  const { log } = options;
  const store = new PostgresLedgerStore({
    connectionString: options.connectionString,
    logger: ledgerLogger(log),
  });
  let state: State = { kind: 'starting' };
  let closed = false;
  /** The last call found PostgreSQL unreachable. */
  let unreachable = false;
  let timer: NodeJS.Timeout | undefined;

  const prepare = async (attempt: number): Promise<void> => {
    if (closed) return;
    try {
      await store.migrate();
      if (options.terms === 'lease') {
        state = { kind: 'lease' };
        log.info({}, 'ledger ready: serving the leader election terms');
        return;
      }
      const term = await store.takeNextTerm(options.lease, options.holder);
      state = { kind: 'ready', fence: { lease: options.lease, term, holder: options.holder } };
      log.info({ term: term }, 'ledger ready: took the next leadership term');
      options.onTerm?.(term);
    } catch (err) {
      const delayMs = Math.min(30_000, 500 * 2 ** attempt);
      log.warn(
        { err: err instanceof Error ? err.message : String(err), retryInMs: delayMs },
        'ledger unavailable; retrying',
      );
      timer = setTimeout(() => void prepare(attempt + 1), delayMs);
    }
  };
  await prepare(0);

  // Retention runs once the ledger is ready, then every half retention period (at most hourly),
  // so a record outlives its retention by at most half of it (or an hour).
  const retention = options.retentionMs ?? 0;
  const applyRetention = (): void => {
    if (state.kind !== 'ready' && state.kind !== 'lease') return;
    store.applyRetention(new Date(Date.now() - retention)).then(
      (r) => {
        if (r.runsDeleted + r.ticksNotRunDeleted > 0) log.info({ ...r }, 'ledger retention applied');
      },
      (err: unknown) => {
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'ledger retention failed');
      },
    );
  };
  const retentionTimer =
    retention > 0
      ? setInterval(
          applyRetention,
          Math.min(RETENTION_INTERVAL_MS, Math.max(1000, Math.floor(retention / 2))),
        )
      : undefined;
  retentionTimer?.unref();
  if (retention > 0) applyRetention();

  const storeFence = (fence: Fence): StoreFence => ({
    lease: { ...options.lease, uid: fence.leaseUid ?? options.lease.uid },
    term: fence.term,
    holder: fence.holder,
  });
  const guard = async <T>(work: (fence: StoreFence) => Promise<T>, given?: Fence): Promise<T> => {
    const current = state;
    if (current.kind === 'starting') throw new LedgerUnavailableError('the ledger database is not ready yet');
    if (current.kind === 'fenced') throw new FencedError('a newer leadership term owns the ledger');
    const fence =
      current.kind === 'lease' ? storeFence(given ?? { term: 0, holder: options.holder }) : current.fence;
    try {
      const result = await work(fence);
      unreachable = false;
      return result;
    } catch (err) {
      // The store's errors are the common ledger's (subclasses): they pass through as they are.
      if (isLedgerUnavailable(err)) unreachable = true;
      if (err instanceof FencedError && current.kind === 'ready' && state.kind === 'ready') {
        state = { kind: 'fenced', fence: current.fence };
        log.error({ term: current.fence.term }, 'a newer leadership term owns the ledger: standing down');
      }
      throw err;
    }
  };

  const claims = new ClaimBatcher(store);
  const loads = new LoadBatcher(store, RECENT);
  const ledger: Ledger = {
    mode: 'postgres',
    load: (job: JobRef, status: ScheduledSingletonJobStatus | undefined) =>
      guard(async () => {
        const { runs: rows, ticksNotRun: notRun, latestTick: latest } = await loads.load(job.uid);
        const byKey = new Map<string, RunRow>();
        for (const row of rows) byKey.set(row.runKey, row);
        const runs = [...byKey.values()]
          .map(runOfRow)
          .sort((a, b) => b.claimedAt.getTime() - a.claimedAt.getTime());
        const fromStatus = viewFromStatus(status);
        const tokens = new Set(fromStatus.manualTokens);
        for (const r of runs) if (r.id.kind === 'manual') tokens.add(r.id.token);
        const view: LedgerView = {
          runs,
          notRun: notRun.map(notRunOfRow),
          manualTokens: [...tokens],
          // Status counts too: it may know ticks this database never saw (a switch from the
          // status-only ledger, an empty or restored database).
          latestTick: later(latest ?? undefined, fromStatus.latestTick),
        };
        return view;
      }),
    write: (job: JobRef, given: Fence, write: LedgerWrite) =>
      guard((fence) => writeOne(store, claims, fence, job, write), given),
  };

  return {
    ledger,
    ready: () => (state.kind === 'ready' || state.kind === 'lease') && !unreachable,
    term: () => (state.kind === 'ready' || state.kind === 'fenced' ? state.fence.term : undefined),
    raise: async (fence: Fence) => {
      if (state.kind !== 'lease') throw new LedgerUnavailableError('the ledger database is not ready yet');
      const f = storeFence(fence);
      try {
        const raised = (await store.raiseFence(f.lease, f.term, f.holder)) === 'raised';
        unreachable = false;
        return raised;
      } catch (err) {
        if (isLedgerUnavailable(err)) unreachable = true;
        throw err;
      }
    },
    close: async () => {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      if (retentionTimer !== undefined) clearInterval(retentionTimer);
      await store.close();
    },
  };
}

function later(a: Date | undefined, b: Date | undefined): Date | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a.getTime() >= b.getTime() ? a : b;
}

/** The store's string-only logger, on top of the operator's structured one. */
export function ledgerLogger(log: Logger): LedgerLogger {
  return {
    info: (msg) => {
      log.info({}, msg);
    },
    warn: (msg) => {
      log.warn({}, msg);
    },
    error: (msg) => {
      log.error({}, msg);
    },
  };
}

function identity(job: JobRef, run: RunId): RunIdentity {
  return run.kind === 'scheduled'
    ? { kind: 'scheduled', jobUid: job.uid, tick: run.tick, attempt: run.attempt }
    : { kind: 'manual', jobUid: job.uid, manualToken: run.token, attempt: run.attempt };
}

async function writeOne(
  store: PostgresLedgerStore,
  claims: ClaimBatcher,
  fence: StoreFence,
  job: JobRef,
  write: LedgerWrite,
): Promise<'ok' | 'finished'> {
  switch (write.kind) {
    case 'claim': {
      // claimed:false is a run this ledger already holds: ours after a commit whose answer was
      // lost, or a predecessor's claim. Its Pod is finished (same name) unless the run ended.
      const result = await claims.claim(fence, {
        ...identity(job, write.run),
        namespace: job.namespace,
        jobName: job.name,
        podName: write.podName,
      });
      return !result.claimed && result.row.state === 'Finished' ? 'finished' : 'ok';
    }
    case 'created':
      await store.recordRunState(fence, runKey(identity(job, write.run)), { state: 'Pending' });
      return 'ok';
    case 'started':
      await store.recordRunState(fence, runKey(identity(job, write.run)), {
        state: 'Running',
        startedAt: write.at,
      });
      return 'ok';
    case 'finished':
      await store.recordRunState(fence, runKey(identity(job, write.run)), {
        state: 'Finished',
        outcome: write.outcome,
        reason: write.reason,
        message: write.message,
        finishedAt: write.at,
      });
      return 'ok';
    case 'notRun': {
      const r = write.record;
      await store.recordTicksNotRun(fence, {
        jobUid: job.uid,
        namespace: job.namespace,
        jobName: job.name,
        outcome: r.outcome,
        firstTick: wholeSecond(r.firstTick),
        lastTick: wholeSecond(r.lastTick),
        count: r.count,
        reason: r.reason,
        message: r.message,
      });
      return 'ok';
    }
    default: {
      const never: never = write;
      throw new Error(`unknown ledger write ${JSON.stringify(never)}`);
    }
  }
}

function wholeSecond(d: Date): Date {
  return new Date(tickSeconds(d) * 1000);
}

function runOfRow(row: RunRow): LedgerRun {
  const id: RunId =
    row.kind === 'scheduled'
      ? { kind: 'scheduled', tick: row.tick, attempt: row.attempt }
      : { kind: 'manual', token: row.manualToken, attempt: row.attempt };
  return {
    id,
    podName: row.podName,
    state: row.state === 'Pending' ? 'Created' : row.state,
    claimedAt: row.claimedAt,
    term: row.term,
    startedAt: row.startedAt ?? undefined,
    finishedAt: row.finishedAt ?? undefined,
    outcome: row.outcome ?? undefined,
    reason: row.reason ?? undefined,
    message: row.message ?? undefined,
  };
}

function notRunOfRow(row: TicksNotRunRow): NotRunRecord {
  return {
    outcome: row.outcome,
    firstTick: row.firstTick,
    lastTick: row.lastTick,
    count: row.count,
    reason: row.reason,
    message: row.message,
    recordedAt: row.recordedAt,
  };
}
