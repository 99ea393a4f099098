// Mapping between `ssj` table rows (as pg returns them) and the ledger's typed rows.
// pg returns bigint as a string and timestamptz as a Date; enumerations are narrowed here, so a
// value the schema's CHECK constraints should have refused fails loudly instead of spreading.

import {
  RUN_OUTCOMES,
  RUN_STATES,
  TICK_NOT_RUN_OUTCOMES,
  type RunOutcome,
  type RunRow,
  type RunState,
  type TickNotRunOutcome,
  type TicksNotRunRow,
} from './model.ts';

export const RUN_COLUMNS = `run_key, job_uid, namespace, job_name, run_kind, tick, manual_token, attempt, pod_name,
  state, outcome, reason, message, holder, term, claimed_at, started_at, finished_at, updated_at,
  updated_holder, updated_term`;

export interface RunRecord {
  run_key: string;
  job_uid: string;
  namespace: string;
  job_name: string;
  run_kind: string;
  tick: Date | null;
  manual_token: string | null;
  attempt: number;
  pod_name: string;
  state: string;
  outcome: string | null;
  reason: string | null;
  message: string | null;
  holder: string;
  term: string;
  claimed_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  updated_at: Date;
  updated_holder: string;
  updated_term: string;
}

export const TICKS_NOT_RUN_COLUMNS = `job_uid, namespace, job_name, outcome, first_tick, last_tick, count, reason,
  message, holder, term, recorded_at, updated_at`;

export interface TicksNotRunRecordRow {
  job_uid: string;
  namespace: string;
  job_name: string;
  outcome: string;
  first_tick: Date;
  last_tick: Date;
  count: string;
  reason: string;
  message: string;
  holder: string;
  term: string;
  recorded_at: Date;
  updated_at: Date;
}

function oneOf<T extends string>(allowed: readonly T[], value: string, column: string): T {
  const found = allowed.find((candidate) => candidate === value);
  if (found === undefined) throw new TypeError(`ledger row: unexpected ${column} ${JSON.stringify(value)}`);
  return found;
}

export function bigintColumn(value: string, column: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new TypeError(`ledger row: ${column} ${value} is not a safe integer`);
  return n;
}

export function toRunRow(r: RunRecord): RunRow {
  const base = {
    runKey: r.run_key,
    jobUid: r.job_uid,
    namespace: r.namespace,
    jobName: r.job_name,
    attempt: r.attempt,
    podName: r.pod_name,
    state: oneOf<RunState>(RUN_STATES, r.state, 'state'),
    outcome: r.outcome === null ? null : oneOf<RunOutcome>(RUN_OUTCOMES, r.outcome, 'outcome'),
    reason: r.reason,
    message: r.message,
    holder: r.holder,
    term: bigintColumn(r.term, 'term'),
    claimedAt: r.claimed_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    updatedAt: r.updated_at,
    updatedHolder: r.updated_holder,
    updatedTerm: bigintColumn(r.updated_term, 'updated_term'),
  };
  if (r.run_kind === 'scheduled' && r.tick !== null) return { ...base, kind: 'scheduled', tick: r.tick };
  if (r.run_kind === 'manual' && r.manual_token !== null)
    return { ...base, kind: 'manual', manualToken: r.manual_token };
  throw new TypeError(`ledger row: run ${r.run_key} has kind ${r.run_kind} without its identity column`);
}

export function toTicksNotRunRow(r: TicksNotRunRecordRow): TicksNotRunRow {
  return {
    jobUid: r.job_uid,
    namespace: r.namespace,
    jobName: r.job_name,
    outcome: oneOf<TickNotRunOutcome>(TICK_NOT_RUN_OUTCOMES, r.outcome, 'outcome'),
    firstTick: r.first_tick,
    lastTick: r.last_tick,
    count: bigintColumn(r.count, 'count'),
    reason: r.reason,
    message: r.message,
    holder: r.holder,
    term: bigintColumn(r.term, 'term'),
    recordedAt: r.recorded_at,
    updatedAt: r.updated_at,
  };
}
