/**
 * The 'postgres' ledger's semantics, in memory: one store shared by every controller process
 * (the database), and one `Ledger` per process (its connection), as src/ledger/postgres-ledger.ts
 * and the SQL of src/ledger/postgres/store.ts behave:
 * - a claim inserts the run keyed by its identity, or does nothing when the run exists;
 * - a state write moves a run forward only (Claimed < Created < Running < Finished), so the first
 *   outcome wins; writing about a run that was never claimed throws;
 * - a ticks-not-run record is keyed by (job, first tick, outcome): recorded once, extended by a
 *   later last tick, otherwise unchanged;
 * - the fence: each process raises the term when it opens; a process whose term is older is
 *   fenced (FencedError from then on, loads included);
 * - while the store is "down", every call throws LedgerUnavailableError;
 * - `load` returns the unfinished runs and the 20 most recent, the 20 most recent records, and
 *   the latest tick accounted for: the store's own maximum, or what the status knows if later.
 *
 * The store keeps every record for ever: it is the unbounded log the checkers read.
 */
import type { ScheduledSingletonJobStatus } from '../../../../src/api/types.ts';
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
  type RunState,
} from '../../../../src/ledger/ledger.ts';
import { viewFromStatus } from '../../../../src/ledger/status-ledger.ts';
import { runKey, type RunId } from '../../../../src/run/identity.ts';

const RECENT = 20;
const ORDER: readonly RunState[] = ['Claimed', 'Created', 'Running', 'Finished'];

export interface StoredRun extends LedgerRun {
  readonly jobUid: string;
}

export interface MemoryStoreHooks {
  /** A run's outcome was written (the first and only time). */
  finished?(jobUid: string, run: StoredRun): void;
}

export class MemoryLedgerStore {
  available = true;
  term = 0;
  readonly runs = new Map<string, StoredRun>();
  readonly notRun = new Map<string, NotRunRecord & { readonly jobUid: string }>();
  private readonly clock: () => number;
  private readonly hooks: MemoryStoreHooks;

  constructor(clock: () => number, hooks: MemoryStoreHooks = {}) {
    this.clock = clock;
    this.hooks = hooks;
  }

  /**
   * Opens a connection for a process of term `fence.term` (raising the fence, as a new leader
   * does). Every call goes through `gate`, where the simulation interleaves it with others.
   */
  open(fence: Fence, gate: Gate): Ledger {
    let fenced = fence.term < this.term;
    if (!fenced) this.term = fence.term;
    const guard = <T>(work: () => T): T => {
      if (!this.available) throw new LedgerUnavailableError('the ledger database cannot be reached');
      if (fenced || fence.term < this.term) {
        fenced = true;
        throw new FencedError('a newer leadership term owns the ledger');
      }
      return work();
    };
    return {
      mode: 'postgres',
      load: (job, status) => gate('ledger.load', () => guard(() => this.load(job, status))),
      write: (job, _fence, write) => gate('ledger.write', () => guard(() => this.write(job, write))),
    };
  }

  load(job: JobRef, status: ScheduledSingletonJobStatus | undefined): LedgerView {
    const mine = [...this.runs.values()].filter((r) => r.jobUid === job.uid);
    const recent = [...mine]
      .sort((a, b) => b.claimedAt.getTime() - a.claimedAt.getTime() || b.id.attempt - a.id.attempt)
      .slice(0, RECENT);
    const byKey = new Map<string, StoredRun>();
    for (const r of [...mine.filter((r) => r.state !== 'Finished'), ...recent]) byKey.set(runKey(r.id), r);
    const runs = [...byKey.values()].map(strip).sort((a, b) => b.claimedAt.getTime() - a.claimedAt.getTime());
    const notRun = [...this.notRun.values()]
      .filter((n) => n.jobUid === job.uid)
      .sort((a, b) => b.lastTick.getTime() - a.lastTick.getTime())
      .slice(0, RECENT)
      .map((n): NotRunRecord => ({
        outcome: n.outcome,
        firstTick: n.firstTick,
        lastTick: n.lastTick,
        count: n.count,
        reason: n.reason,
        message: n.message,
        recordedAt: n.recordedAt,
      }));
    const fromStatus = viewFromStatus(status);
    const tokens = new Set(fromStatus.manualTokens);
    for (const r of runs) if (r.id.kind === 'manual') tokens.add(r.id.token);
    let latest = fromStatus.latestTick?.getTime();
    for (const r of mine) if (r.id.kind === 'scheduled') latest = Math.max(latest ?? 0, r.id.tick.getTime());
    for (const n of this.notRun.values())
      if (n.jobUid === job.uid) latest = Math.max(latest ?? 0, n.lastTick.getTime());
    return {
      runs,
      notRun,
      manualTokens: [...tokens],
      ...(latest === undefined ? {} : { latestTick: new Date(latest) }),
    };
  }

  /** 'finished' answers a claim of a run the store holds as ended (its Pod must not come back). */
  write(job: JobRef, write: LedgerWrite): 'ok' | 'finished' {
    const now = new Date(this.clock());
    switch (write.kind) {
      case 'claim': {
        const key = `${job.uid}/${runKey(write.run)}`;
        const existing = this.runs.get(key);
        if (existing !== undefined) return existing.state === 'Finished' ? 'finished' : 'ok'; // claimed: false
        this.runs.set(key, {
          jobUid: job.uid,
          id: write.run,
          podName: write.podName,
          state: 'Claimed',
          claimedAt: now,
        });
        return 'ok';
      }
      case 'created':
        this.advance(job, write.run, 'Created', (r) => r);
        return 'ok';
      case 'started':
        this.advance(job, write.run, 'Running', (r) => ({ ...r, startedAt: r.startedAt ?? write.at }));
        return 'ok';
      case 'finished': {
        const done = this.advance(job, write.run, 'Finished', (r) => ({
          ...r,
          outcome: write.outcome,
          reason: write.reason,
          message: write.message,
          finishedAt: write.at,
        }));
        if (done !== undefined) this.hooks.finished?.(job.uid, done);
        return 'ok';
      }
      case 'notRun': {
        const r = write.record;
        const first = wholeSecond(r.firstTick);
        const key = `${job.uid}/${first.getTime()}/${r.outcome}`;
        const existing = this.notRun.get(key);
        const record = {
          ...r,
          firstTick: first,
          lastTick: wholeSecond(r.lastTick),
          jobUid: job.uid,
          recordedAt: now,
        };
        if (existing === undefined) this.notRun.set(key, record);
        else if (existing.lastTick.getTime() < record.lastTick.getTime()) {
          this.notRun.set(key, { ...record, count: Math.max(existing.count, record.count) });
        }
        return 'ok';
      }
      default: {
        const never: never = write;
        throw new Error(`unknown write ${JSON.stringify(never)}`);
      }
    }
  }

  /** Moves a run forward; undefined when the write would not (the run stays as it is). */
  private advance(
    job: JobRef,
    run: RunId,
    to: RunState,
    f: (r: StoredRun) => StoredRun,
  ): StoredRun | undefined {
    const key = `${job.uid}/${runKey(run)}`;
    const existing = this.runs.get(key);
    if (existing === undefined) throw new Error(`recordRunState: no run ${key}`);
    if (ORDER.indexOf(existing.state) >= ORDER.indexOf(to)) return undefined;
    const next = { ...f(existing), state: to };
    this.runs.set(key, next);
    return next;
  }
}

export type Gate = <T>(label: string, perform: () => T) => Promise<T>;

function strip(r: StoredRun): LedgerRun {
  return {
    id: r.id,
    podName: r.podName,
    state: r.state,
    claimedAt: r.claimedAt,
    term: r.term,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    outcome: r.outcome,
    reason: r.reason,
    message: r.message,
  };
}

function wholeSecond(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}
