// PostgresLedgerStore: the idempotency ledger and the leader fence in PostgreSQL.
//
// What it guarantees:
// - A run, identified by runKey(), is claimed at most once: claimRun inserts the row or, when
//   it exists, returns it with claimed:false. The schema's unique indexes refuse a second row
//   for the same identity whatever the caller does.
// - Fencing: every write (claimRun, recordRunState, recordTicksNotRun) runs in one transaction
//   that first reads the Lease's fence row FOR SHARE and throws FencedError, writing nothing,
//   unless the row holds exactly the writer's term and holder. raiseFence and takeNextTerm
//   change that row under an EXCLUSIVE lock on the fence table, so they wait for writes already
//   past their check to commit, and writes that start later queue behind them and then see the
//   new term: a write racing a raise is ordered before it or refused, never after it. (The
//   table lock also pauses writers of other Leases for the instant of a raise; raises are rare.)
// - Terms without a clock: takeNextTerm makes the Lease's term one more than the row's (1 for a
//   new row) and returns it. The table lock serializes concurrent takers, so each gets a term
//   of its own and only the last one is current, whatever the processes' clocks say.
// - Monotonicity: a run's state only moves forward (Claimed < Pending < Running < Finished);
//   its outcome is set once, the first Finished write wins; its start time is kept once set.
//   A range of ticks not run is recorded once and may only grow at its end.
// - Errors are classified (errors.ts): LedgerUnavailableError when PostgreSQL cannot serve,
//   FencedError when the term is over, anything else is a bug and thrown as it is.
// - Every statement is bounded by statementTimeoutMs on the server (statement_timeout), a
//   session idle inside a transaction that long is closed by the server (so a paused process
//   cannot hold the fence row's lock), and the client gives up one second later in case the
//   server itself stopped answering.
//
// What it does not do:
// - Decide anything: which tick is due, which attempt comes next and whether a range of ticks
//   was Skipped or Missed are the planner's; this class only records them.
// - Retry: a LedgerUnavailableError is for the caller to retry with backoff. Every write is
//   idempotent, so a retry after a COMMIT whose answer was lost is safe; such a retry of
//   claimRun returns claimed:false with the row this same term wrote (same holder and term):
//   the caller continues that run, as after a crash between claim and Pod creation.
//   takeNextTerm is the exception: a retry after a lost answer takes another term, which
//   only skips the number the lost answer held (no write was made under it).
// - Refuse a claim of a tick already recorded as Skipped or Missed: the planner never asks.
// - Retire the fence rows of a deleted Lease: raising the term of a recreated Lease (new uid)
//   starts a row of its own and leaves the old uid's row as it was, so a leader of the old
//   Lease is stopped by losing that Lease (and by the Pod admission policy), not here.
// - Fence applyRetention or the reads: retention deletes only finished rows older than its
//   cutoff and never a job's latest accounted tick, so any replica may run it.
//
// TLS: pg reads sslmode (and sslrootcert, sslcert, sslkey) from the connection string.
// With pg 8, `sslmode=disable` turns TLS off, `no-verify` encrypts without verifying, and
// `prefer`, `require`, `verify-ca`, `verify-full` all mean verify-full (pg warns once); append
// `uselibpqcompat=true` to get libpq's weaker meanings instead. Parameters in the connection
// string (application_name, for one) win over the options given here.

import { Pool, type PoolClient, type QueryResultRow } from 'pg';
import { FencedError, LedgerUnavailableError, classifyPgError } from './errors.ts';
import { migrateLedger, SILENT_LOGGER, type LedgerLogger } from './migrate.ts';
import type {
  ClaimResult,
  Fence,
  LeaseRef,
  LoadedJob,
  RetentionResult,
  RunClaim,
  RunRow,
  RunStateResult,
  RunStateUpdate,
  TicksNotRunRecord,
  TicksNotRunResult,
  TicksNotRunRow,
} from './model.ts';
import { runKey, tickSeconds } from './run-key.ts';
import {
  RUN_COLUMNS,
  TICKS_NOT_RUN_COLUMNS,
  bigintColumn,
  toRunRow,
  toTicksNotRunRow,
  type RunRecord,
  type TicksNotRunRecordRow,
} from './rows.ts';

export interface PostgresLedgerStoreOptions {
  /** postgres://user:password@host:port/database?sslmode=... */
  readonly connectionString: string;
  /** Server-side bound on every statement, and on idling inside a transaction. Default 5000. */
  readonly statementTimeoutMs?: number;
  /** Bound on opening a connection or waiting for a free one in the pool. Default 5000. */
  readonly connectionTimeoutMs?: number;
  /** Bound on migrate(), including waiting for another replica's migration. Default 60000. */
  readonly migrationTimeoutMs?: number;
  /** Connections in the pool. Default 10. */
  readonly poolMax?: number;
  /** Shown in pg_stat_activity. Default 'ssj-operator'. */
  readonly applicationName?: string;
  /** Where pool and migration messages go. Default: nowhere. */
  readonly logger?: LedgerLogger;
}

const DEFAULT_LIST_LIMIT = 100;
const MAX_LIST_LIMIT = 10_000;

const STATE_ORDER = `ARRAY['Claimed','Pending','Running','Finished']`;

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1)
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

function nonEmpty(value: string, name: string): string {
  if (value === '') throw new RangeError(`${name} must not be empty`);
  return value;
}

function checkLease(lease: LeaseRef): void {
  nonEmpty(lease.namespace, 'lease.namespace');
  nonEmpty(lease.name, 'lease.name');
  nonEmpty(lease.uid, 'lease.uid');
}

function checkTerm(term: number, holder: string): void {
  if (!Number.isSafeInteger(term) || term < 0)
    throw new RangeError(`term must be an integer >= 0, got ${term}`);
  nonEmpty(holder, 'holder');
}

function checkFence(fence: Fence): void {
  checkLease(fence.lease);
  checkTerm(fence.term, fence.holder);
}

function listLimit(options: { readonly limit?: number } | undefined): number {
  const limit = positiveInteger(options?.limit ?? DEFAULT_LIST_LIMIT, 'limit');
  return Math.min(limit, MAX_LIST_LIMIT);
}

function checkUpdate(update: RunStateUpdate): void {
  if (update.state === 'Finished' && update.outcome === undefined) {
    throw new TypeError('recordRunState: a Finished run needs an outcome');
  }
  if (update.state !== 'Finished' && update.outcome !== undefined) {
    throw new TypeError(`recordRunState: an outcome needs state Finished, got ${update.state}`);
  }
}

function checkTicksNotRun(rec: TicksNotRunRecord): void {
  nonEmpty(rec.jobUid, 'jobUid');
  const first = tickSeconds(rec.firstTick);
  const last = tickSeconds(rec.lastTick);
  positiveInteger(rec.count, 'count');
  if (last < first) throw new RangeError('recordTicksNotRun: lastTick is before firstTick');
  if ((rec.count === 1) !== (first === last)) {
    throw new RangeError('recordTicksNotRun: count is 1 exactly when firstTick equals lastTick');
  }
}

export class PostgresLedgerStore {
  readonly #pool: Pool;
  readonly #connectionString: string;
  readonly #applicationName: string;
  readonly #connectionTimeoutMs: number;
  readonly #migrationTimeoutMs: number;
  readonly #logger: LedgerLogger;
  #closed: Promise<void> | undefined;

  constructor(options: PostgresLedgerStoreOptions) {
    const statementTimeoutMs = positiveInteger(options.statementTimeoutMs ?? 5000, 'statementTimeoutMs');
    this.#connectionTimeoutMs = positiveInteger(options.connectionTimeoutMs ?? 5000, 'connectionTimeoutMs');
    this.#migrationTimeoutMs = positiveInteger(options.migrationTimeoutMs ?? 60_000, 'migrationTimeoutMs');
    this.#connectionString = nonEmpty(options.connectionString, 'connectionString');
    this.#applicationName = options.applicationName ?? 'ssj-operator';
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#pool = new Pool({
      connectionString: this.#connectionString,
      application_name: this.#applicationName,
      max: positiveInteger(options.poolMax ?? 10, 'poolMax'),
      connectionTimeoutMillis: this.#connectionTimeoutMs,
      statement_timeout: statementTimeoutMs,
      idle_in_transaction_session_timeout: statementTimeoutMs,
      query_timeout: statementTimeoutMs + 1000,
      keepAlive: true,
    });
    // An idle connection that breaks (server restart, failover) is emitted here; pg has already
    // dropped it from the pool. Without a listener the process would crash.
    this.#pool.on('error', (error) => {
      this.#logger.warn(`ledger idle connection lost: ${error.message}`);
    });
  }

  /** Applies pending schema migrations under an advisory lock; returns the names applied. */
  async migrate(): Promise<string[]> {
    return migrateLedger(
      {
        connectionString: this.#connectionString,
        application_name: this.#applicationName,
        connectionTimeoutMillis: this.#connectionTimeoutMs,
        statement_timeout: this.#migrationTimeoutMs,
        query_timeout: this.#migrationTimeoutMs + 1000,
        keepAlive: true,
      },
      this.#logger,
    );
  }

  /** Answers when PostgreSQL serves queries (for readiness); throws LedgerUnavailableError otherwise. */
  async ping(): Promise<void> {
    await this.#query('SELECT 1', []);
  }

  /** Ends the pool; waits for checked-out connections to be returned. Idempotent. */
  async close(): Promise<void> {
    this.#closed ??= this.#pool.end();
    await this.#closed;
  }

  /**
   * Makes `term` held by `holder` the Lease's current term, in its own transaction.
   * 'raised': the row now holds this term and holder (inserted, raised, or already so).
   * 'stale': the row holds a higher term, or this term with another holder; nothing changed.
   */
  async raiseFence(lease: LeaseRef, term: number, holder: string): Promise<'raised' | 'stale'> {
    checkLease(lease);
    checkTerm(term, holder);
    const result = await this.#transaction(async (client) => {
      // A row lock would not do: PostgreSQL lets a FOR SHARE request pass an updater waiting on
      // another share lock, so a stream of old-term writes could starve the raise and keep
      // passing their check. A table lock request queues, and later requests queue behind it.
      await client.query('LOCK TABLE ssj.fence IN EXCLUSIVE MODE');
      return client.query(
        `INSERT INTO ssj.fence AS f (lease_namespace, lease_name, lease_uid, term, holder)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (lease_namespace, lease_name, lease_uid) DO UPDATE
           SET term = EXCLUDED.term, holder = EXCLUDED.holder, updated_at = now()
           WHERE f.term < EXCLUDED.term OR (f.term = EXCLUDED.term AND f.holder = EXCLUDED.holder)
         RETURNING term`,
        [lease.namespace, lease.name, lease.uid, term, holder],
      );
    });
    return result.rowCount === 1 ? 'raised' : 'stale';
  }

  /**
   * Makes `holder` the Lease's current term in its own transaction: the row's term plus one, or
   * 1 when the Lease has no row yet, and returns that term. Every earlier holder is fenced from
   * then on. Not idempotent: each call takes a new term (the holder is not compared, so a
   * process that reuses its predecessor's identity still fences it).
   */
  async takeNextTerm(lease: LeaseRef, holder: string): Promise<number> {
    checkLease(lease);
    nonEmpty(holder, 'holder');
    const result = await this.#transaction(async (client) => {
      // The same table lock as raiseFence, for the same reason: a row lock request could be
      // starved by a stream of FOR SHARE checks of the old term.
      await client.query('LOCK TABLE ssj.fence IN EXCLUSIVE MODE');
      return client.query<{ term: string }>(
        `INSERT INTO ssj.fence AS f (lease_namespace, lease_name, lease_uid, term, holder)
         VALUES ($1, $2, $3, 1, $4)
         ON CONFLICT (lease_namespace, lease_name, lease_uid) DO UPDATE
           SET term = f.term + 1, holder = EXCLUDED.holder, updated_at = now()
         RETURNING term`,
        [lease.namespace, lease.name, lease.uid, holder],
      );
    });
    const row = result.rows[0];
    if (row === undefined) throw new Error('takeNextTerm: the upsert returned no row');
    return bigintColumn(row.term, 'term');
  }

  /** Claims a run (state Claimed) unless it exists; then returns the existing row, claimed:false. */
  async claimRun(fence: Fence, run: RunClaim): Promise<ClaimResult> {
    const [result] = await this.claimRuns(fence, [run]);
    if (result === undefined) throw new Error('claimRuns returned no result for its one claim');
    return result;
  }

  /**
   * claimRun for many runs in one transaction, behind one fence check: every run is claimed or
   * found, or (fenced, unavailable) none is. Results are in the order of `runs`.
   */
  async claimRuns(fence: Fence, runs: readonly RunClaim[]): Promise<ClaimResult[]> {
    checkFence(fence);
    if (runs.length === 0) return [];
    const keys = runs.map((run) => {
      nonEmpty(run.namespace, 'namespace');
      nonEmpty(run.jobName, 'jobName');
      nonEmpty(run.podName, 'podName');
      return runKey(run);
    });
    return this.#fenced(fence, async (client) => {
      // One statement for every row: unnest turns the parallel arrays back into rows.
      const inserted = await client.query<RunRecord>(
        `INSERT INTO ssj.runs (run_key, job_uid, namespace, job_name, run_kind, tick, manual_token, attempt,
           pod_name, state, holder, term, updated_holder, updated_term)
         SELECT r.run_key, r.job_uid, r.namespace, r.job_name, r.run_kind, r.tick, r.manual_token, r.attempt,
           r.pod_name, 'Claimed', $10, $11, $10, $11
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
           $7::text[], $8::integer[], $9::text[])
           AS r(run_key, job_uid, namespace, job_name, run_kind, tick, manual_token, attempt, pod_name)
         ON CONFLICT DO NOTHING
         RETURNING ${RUN_COLUMNS}`,
        [
          keys,
          runs.map((r) => r.jobUid),
          runs.map((r) => r.namespace),
          runs.map((r) => r.jobName),
          runs.map((r) => r.kind),
          runs.map((r) => (r.kind === 'scheduled' ? r.tick : null)),
          runs.map((r) => (r.kind === 'manual' ? r.manualToken : null)),
          runs.map((r) => r.attempt),
          runs.map((r) => r.podName),
          fence.holder,
          fence.term,
        ],
      );
      const rows = new Map<string, ClaimResult>();
      for (const record of inserted.rows) {
        const row = toRunRow(record);
        rows.set(row.runKey, { claimed: true, row });
      }
      const missing = keys.filter((k) => !rows.has(k));
      if (missing.length > 0) {
        const existing = await client.query<RunRecord>(
          `SELECT ${RUN_COLUMNS} FROM ssj.runs WHERE run_key = ANY($1::text[])`,
          [missing],
        );
        for (const record of existing.rows) {
          const row = toRunRow(record);
          if (!rows.has(row.runKey)) rows.set(row.runKey, { claimed: false, row });
        }
      }
      return keys.map((key) => {
        const result = rows.get(key);
        if (result === undefined) {
          throw new Error(
            `claimRuns: ${key} conflicted with a row of another key (runKey and the unique indexes disagree)`,
          );
        }
        return result;
      });
    });
  }

  /**
   * Moves a run forward. applied:false (with the row as it is) when the update would not move
   * it forward: a Finished run never changes, so the first outcome wins. Throws when the run
   * does not exist (a run is claimed before anything is recorded about it).
   */
  async recordRunState(fence: Fence, key: string, update: RunStateUpdate): Promise<RunStateResult> {
    checkFence(fence);
    checkUpdate(update);
    return this.#fenced(fence, async (client) => {
      const updated = await client.query<RunRecord>(
        `UPDATE ssj.runs SET
           state = $2::text,
           outcome = $3::text,
           reason = COALESCE($4::text, reason),
           message = COALESCE($5::text, message),
           started_at = COALESCE(started_at, $6::timestamptz),
           finished_at = CASE WHEN $2::text = 'Finished' THEN COALESCE($7::timestamptz, now()) ELSE finished_at END,
           updated_at = now(),
           updated_holder = $8,
           updated_term = $9
         WHERE run_key = $1
           AND array_position(${STATE_ORDER}, state) < array_position(${STATE_ORDER}, $2::text)
         RETURNING ${RUN_COLUMNS}`,
        [
          key,
          update.state,
          update.outcome ?? null,
          update.reason ?? null,
          update.message ?? null,
          update.startedAt ?? null,
          update.finishedAt ?? null,
          fence.holder,
          fence.term,
        ],
      );
      const row = updated.rows[0];
      if (row !== undefined) return { applied: true, row: toRunRow(row) };
      const existing = await selectRun(client, key);
      if (existing === undefined) throw new Error(`recordRunState: no run ${key}`);
      return { applied: false, row: existing };
    });
  }

  /**
   * Records a range of ticks that ended without a run. Recording the same range again changes
   * nothing; a later lastTick for the same (job, firstTick, outcome) extends the range (an
   * ongoing suspension); an earlier one is ignored.
   */
  async recordTicksNotRun(fence: Fence, rec: TicksNotRunRecord): Promise<TicksNotRunResult> {
    checkFence(fence);
    checkTicksNotRun(rec);
    return this.#fenced(fence, async (client) => {
      const inserted = await client.query<TicksNotRunRecordRow>(
        `INSERT INTO ssj.ticks_not_run (job_uid, namespace, job_name, outcome, first_tick, last_tick, count,
           reason, message, holder, term)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (job_uid, first_tick, outcome) DO NOTHING
         RETURNING ${TICKS_NOT_RUN_COLUMNS}`,
        [
          rec.jobUid,
          rec.namespace,
          rec.jobName,
          rec.outcome,
          rec.firstTick,
          rec.lastTick,
          rec.count,
          rec.reason,
          rec.message,
          fence.holder,
          fence.term,
        ],
      );
      const row = inserted.rows[0];
      if (row !== undefined) return { result: 'recorded', row: toTicksNotRunRow(row) };
      const extended = await client.query<TicksNotRunRecordRow>(
        `UPDATE ssj.ticks_not_run SET
           last_tick = $4, count = GREATEST(count, $5), reason = $6, message = $7, holder = $8, term = $9,
           updated_at = now()
         WHERE job_uid = $1 AND first_tick = $2 AND outcome = $3 AND last_tick < $4
         RETURNING ${TICKS_NOT_RUN_COLUMNS}`,
        [
          rec.jobUid,
          rec.firstTick,
          rec.outcome,
          rec.lastTick,
          rec.count,
          rec.reason,
          rec.message,
          fence.holder,
          fence.term,
        ],
      );
      const grown = extended.rows[0];
      if (grown !== undefined) return { result: 'extended', row: toTicksNotRunRow(grown) };
      const existing = await client.query<TicksNotRunRecordRow>(
        `SELECT ${TICKS_NOT_RUN_COLUMNS} FROM ssj.ticks_not_run WHERE job_uid = $1 AND first_tick = $2 AND outcome = $3`,
        [rec.jobUid, rec.firstTick, rec.outcome],
      );
      const current = existing.rows[0];
      if (current === undefined) throw new Error('recordTicksNotRun: the conflicting row is gone');
      return { result: 'unchanged', row: toTicksNotRunRow(current) };
    });
  }

  async getRun(key: string): Promise<RunRow | null> {
    const result = await this.#query<RunRecord>(`SELECT ${RUN_COLUMNS} FROM ssj.runs WHERE run_key = $1`, [
      key,
    ]);
    const row = result.rows[0];
    return row === undefined ? null : toRunRow(row);
  }

  /** A job's runs, the most recently claimed first. */
  async listRuns(jobUid: string, options?: { readonly limit?: number }): Promise<RunRow[]> {
    const result = await this.#query<RunRecord>(
      `SELECT ${RUN_COLUMNS} FROM ssj.runs WHERE job_uid = $1
       ORDER BY claimed_at DESC, attempt DESC, run_key DESC LIMIT $2`,
      [jobUid, listLimit(options)],
    );
    return result.rows.map(toRunRow);
  }

  /**
   * What the controller reads of each job, in two queries however many jobs are asked for: its
   * unfinished runs and its `limit` latest runs (listUnfinishedRuns and listRuns, in no order),
   * its `limit` latest ticks-not-run ranges (listTicksNotRun's order) and its latest accounted
   * tick (latestTick). Every job asked for has an entry, an empty one when it has no rows.
   */
  async loadJobs(
    jobUids: readonly string[],
    options?: { readonly limit?: number },
  ): Promise<Map<string, LoadedJob>> {
    const limit = listLimit(options);
    const uids = [...new Set(jobUids)];
    // LATERAL per job, so each job's part is the same index scan as a query of its own.
    const [runs, rest] = await Promise.all([
      this.#query<RunRecord>(
        `SELECT r.* FROM unnest($1::text[]) AS j(uid) CROSS JOIN LATERAL (
           SELECT ${RUN_COLUMNS} FROM ssj.runs WHERE job_uid = j.uid AND state <> 'Finished'
           UNION
           (SELECT ${RUN_COLUMNS} FROM ssj.runs WHERE job_uid = j.uid
            ORDER BY claimed_at DESC, attempt DESC, run_key DESC LIMIT $2)
         ) r`,
        [uids, limit],
      ),
      // One row per job at least (its latest tick), with the ranges' columns null when it has
      // none.
      this.#query<
        { for_job: string; latest: Date | null } & {
          [K in keyof TicksNotRunRecordRow]: TicksNotRunRecordRow[K] | null;
        }
      >(
        `SELECT j.uid AS for_job, accounted.latest, n.* FROM unnest($1::text[]) AS j(uid)
         CROSS JOIN LATERAL (
           SELECT max(t) AS latest FROM (
             SELECT max(tick) AS t FROM ssj.runs WHERE job_uid = j.uid AND run_kind = 'scheduled'
             UNION ALL
             SELECT max(last_tick) FROM ssj.ticks_not_run WHERE job_uid = j.uid
           ) ticks
         ) accounted
         LEFT JOIN LATERAL (
           SELECT ${TICKS_NOT_RUN_COLUMNS} FROM ssj.ticks_not_run WHERE job_uid = j.uid
           ORDER BY last_tick DESC, outcome LIMIT $2
         ) n ON true
         ORDER BY j.uid, n.last_tick DESC, n.outcome`,
        [uids, limit],
      ),
    ]);
    const loaded = new Map<
      string,
      { runs: RunRow[]; ticksNotRun: TicksNotRunRow[]; latestTick: Date | null }
    >();
    for (const uid of uids) loaded.set(uid, { runs: [], ticksNotRun: [], latestTick: null });
    for (const record of runs.rows) loaded.get(record.job_uid)?.runs.push(toRunRow(record));
    for (const row of rest.rows) {
      const job = loaded.get(row.for_job);
      if (job === undefined) continue;
      job.latestTick = row.latest;
      // A row with a range has every column of one (the columns are NOT NULL in the table).
      if (row.job_uid !== null) job.ticksNotRun.push(toTicksNotRunRow(row as TicksNotRunRecordRow));
    }
    return loaded;
  }

  /** Runs not yet Finished, of one job or of all jobs, the oldest claim first. */
  async listUnfinishedRuns(jobUid?: string): Promise<RunRow[]> {
    const result = await this.#query<RunRecord>(
      `SELECT ${RUN_COLUMNS} FROM ssj.runs
       WHERE state <> 'Finished' AND ($1::text IS NULL OR job_uid = $1::text)
       ORDER BY claimed_at, run_key`,
      [jobUid ?? null],
    );
    return result.rows.map(toRunRow);
  }

  /** A job's Skipped and Missed ranges, the latest last tick first. */
  async listTicksNotRun(jobUid: string, options?: { readonly limit?: number }): Promise<TicksNotRunRow[]> {
    const result = await this.#query<TicksNotRunRecordRow>(
      `SELECT ${TICKS_NOT_RUN_COLUMNS} FROM ssj.ticks_not_run WHERE job_uid = $1
       ORDER BY last_tick DESC, outcome LIMIT $2`,
      [jobUid, listLimit(options)],
    );
    return result.rows.map(toTicksNotRunRow);
  }

  /** The latest tick a job's runs or ticks-not-run account for (the schedule walk's anchor); null if none. */
  async latestTick(jobUid: string): Promise<Date | null> {
    const result = await this.#query<{ latest: Date | null }>(
      `SELECT max(t) AS latest FROM (
         SELECT max(tick) AS t FROM ssj.runs WHERE job_uid = $1 AND run_kind = 'scheduled'
         UNION ALL
         SELECT max(last_tick) FROM ssj.ticks_not_run WHERE job_uid = $1
       ) accounted`,
      [jobUid],
    );
    return result.rows[0]?.latest ?? null;
  }

  /**
   * Deletes Finished runs that finished before `olderThan` and ticks-not-run ranges whose last
   * tick is before it. Never deletes an unfinished run, nor the rows holding a job's latest
   * accounted tick (latestTick is the walk's anchor: losing it would make old ticks look due).
   * So a deleted job keeps those few rows.
   */
  async applyRetention(olderThan: Date): Promise<RetentionResult> {
    if (!Number.isFinite(olderThan.getTime())) throw new RangeError('applyRetention: invalid Date');
    return this.#transaction(async (client) => {
      const runs = await client.query(
        `DELETE FROM ssj.runs r
         WHERE r.state = 'Finished' AND r.finished_at < $1
           AND (r.run_kind = 'manual'
             OR EXISTS (SELECT 1 FROM ssj.runs n
                        WHERE n.job_uid = r.job_uid AND n.run_kind = 'scheduled' AND n.tick > r.tick)
             OR EXISTS (SELECT 1 FROM ssj.ticks_not_run t WHERE t.job_uid = r.job_uid AND t.last_tick > r.tick))`,
        [olderThan],
      );
      const ticks = await client.query(
        `DELETE FROM ssj.ticks_not_run t
         WHERE t.last_tick < $1
           AND (EXISTS (SELECT 1 FROM ssj.ticks_not_run u WHERE u.job_uid = t.job_uid AND u.last_tick > t.last_tick)
             OR EXISTS (SELECT 1 FROM ssj.runs n
                        WHERE n.job_uid = t.job_uid AND n.run_kind = 'scheduled' AND n.tick > t.last_tick))`,
        [olderThan],
      );
      return { runsDeleted: runs.rowCount ?? 0, ticksNotRunDeleted: ticks.rowCount ?? 0 };
    });
  }

  // R names the row shape the SQL text selects; pg cannot check it, the callers' SQL does.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
  async #query<R extends QueryResultRow>(
    text: string,
    values: unknown[],
  ): Promise<{ rows: R[]; rowCount: number | null }> {
    try {
      return await this.#pool.query<R>(text, values);
    } catch (error) {
      throw classifyPgError(error);
    }
  }

  /** Runs `work` in a transaction that first checks the fence under a row share lock. */
  async #fenced<T>(fence: Fence, work: (client: PoolClient) => Promise<T>): Promise<T> {
    return this.#transaction(async (client) => {
      const { lease } = fence;
      const found = await client.query<{ term: string; holder: string }>(
        `SELECT term, holder FROM ssj.fence
         WHERE lease_namespace = $1 AND lease_name = $2 AND lease_uid = $3
         FOR SHARE`,
        [lease.namespace, lease.name, lease.uid],
      );
      const row = found.rows[0];
      const current = row === undefined ? null : { term: bigintColumn(row.term, 'term'), holder: row.holder };
      if (current === null || current.term !== fence.term || current.holder !== fence.holder) {
        throw new FencedError(lease, fence.term, fence.holder, current);
      }
      return work(client);
    });
  }

  async #transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    let client: PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw classifyPgError(error);
    }
    // A connection that breaks between two of our queries is emitted rather than thrown.
    const connection = { broken: false };
    const onError = (error: Error): void => {
      connection.broken = true;
      this.#logger.warn(`ledger connection lost in a transaction: ${error.message}`);
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      const classified = classifyPgError(error);
      if (classified instanceof LedgerUnavailableError) {
        connection.broken = true;
      } else if (!connection.broken) {
        await client.query('ROLLBACK').catch(() => {
          connection.broken = true;
        });
      }
      throw classified;
    } finally {
      client.off('error', onError);
      // A broken connection is destroyed rather than returned to the pool.
      client.release(connection.broken);
    }
  }
}

async function selectRun(client: PoolClient, key: string): Promise<RunRow | undefined> {
  const result = await client.query<RunRecord>(`SELECT ${RUN_COLUMNS} FROM ssj.runs WHERE run_key = $1`, [
    key,
  ]);
  const row = result.rows[0];
  return row === undefined ? undefined : toRunRow(row);
}
