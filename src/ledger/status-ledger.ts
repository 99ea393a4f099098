/**
 * The embedded ledger: the job's status subresource alone (no DATABASE_URL).
 *
 * Contract: a claim is the status write that lists the run in `status.ledger.claims`, made with
 * the job's resourceVersion as a precondition (optimistic concurrency), so two controllers that
 * race for one tick cannot both succeed; the Pod is created only after that write returns.
 * Finished runs and ticks not run live in `status.history`, which is bounded: this ledger
 * remembers recent history only. The tick walk anchor (`status.ledger.scheduleAnchor`) and the
 * claims are never truncated, so a tick once claimed is never claimed again. The view's
 * `latestTick` is the latest of `status.ledger.latestTick` and every tick the status names
 * (`lastScheduleTime`, `lastRun`, `active`, history, claims): never only what the bounded
 * history still holds.
 *
 * Writes other than claims are folded into the reconciler's single status write.
 */
import type { LedgerClaim, RunRecord, ScheduledSingletonJobStatus } from '../api/types.ts';
import type { RunId } from '../run/identity.ts';
import type { Ledger, LedgerRun, LedgerView, NotRunRecord, RunState } from './ledger.ts';

export const statusLedger: Ledger = {
  mode: 'status',
  load: (_job, status) => Promise.resolve(viewFromStatus(status)),
  write: () => Promise.resolve('ok'),
};

export function viewFromStatus(status: ScheduledSingletonJobStatus | undefined): LedgerView {
  const claims = status?.ledger?.claims ?? [];
  const history = status?.history ?? [];
  const runs: LedgerRun[] = [];
  const notRun: NotRunRecord[] = [];
  for (const claim of claims) {
    const run = runOfClaim(claim);
    if (run !== undefined) runs.push(run);
  }
  for (const record of history) {
    if (record.outcome === 'Skipped' || record.outcome === 'Missed') {
      const n = notRunOfRecord(record);
      if (n !== undefined) notRun.push(n);
      continue;
    }
    const run = runOfRecord(record);
    if (run !== undefined) runs.push(run);
  }
  runs.sort((a, b) => b.claimedAt.getTime() - a.claimedAt.getTime());
  const tokens = new Set<string>();
  if (status?.ledger?.handledRunNowToken !== undefined) tokens.add(status.ledger.handledRunNowToken);
  for (const r of runs) if (r.id.kind === 'manual') tokens.add(r.id.token);
  return { runs, notRun, manualTokens: [...tokens], latestTick: latestTickOf(status) };
}

/**
 * The latest tick the status accounts for: every place it names a tick counts, not only the
 * bookkeeping field, so a status written before that field existed (or a history that dropped
 * records) still keeps every tick it ran from being due again.
 */
function latestTickOf(status: ScheduledSingletonJobStatus | undefined): Date | undefined {
  const candidates: (string | undefined)[] = [
    status?.ledger?.latestTick,
    status?.lastScheduleTime,
    status?.lastRun?.tick,
    status?.lastRun?.lastTick,
    status?.active?.tick,
  ];
  for (const r of status?.history ?? []) candidates.push(r.tick, r.lastTick);
  for (const c of status?.ledger?.claims ?? []) candidates.push(c.tick);
  let latest: Date | undefined;
  for (const candidate of candidates) {
    const d = date(candidate);
    if (d !== undefined && (latest === undefined || d.getTime() > latest.getTime())) latest = d;
  }
  return latest;
}

function idOf(
  tick: string | undefined,
  token: string | undefined,
  attempt: number | undefined,
): RunId | undefined {
  const a = attempt ?? 1;
  if (tick !== undefined) {
    const t = new Date(tick);
    return Number.isNaN(t.getTime()) ? undefined : { kind: 'scheduled', tick: t, attempt: a };
  }
  if (token !== undefined) return { kind: 'manual', token, attempt: a };
  return undefined;
}

function date(s: string | undefined): Date | undefined {
  if (s === undefined) return undefined;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

const CLAIM_STATES: readonly RunState[] = ['Claimed', 'Created', 'Running'];

function runOfClaim(c: LedgerClaim): LedgerRun | undefined {
  const id = idOf(c.tick, c.manualToken, c.attempt);
  const claimedAt = date(c.claimedAt);
  if (id === undefined || claimedAt === undefined) return undefined;
  const state = CLAIM_STATES.find((s) => s === c.state) ?? 'Claimed';
  return { id, podName: c.podName, state, claimedAt, term: c.term, startedAt: date(c.startTime) };
}

function runOfRecord(r: RunRecord): LedgerRun | undefined {
  const id = idOf(r.tick, r.manualToken, r.attempt);
  if (id === undefined || r.podName === undefined) return undefined;
  if (r.outcome === 'Skipped' || r.outcome === 'Missed') return undefined;
  const finishedAt = date(r.completionTime);
  const startedAt = date(r.startTime);
  return {
    id,
    podName: r.podName,
    state: 'Finished',
    claimedAt: startedAt ?? finishedAt ?? new Date(0),
    startedAt,
    finishedAt,
    outcome: r.outcome,
    reason: r.reason,
    message: r.message,
  };
}

function notRunOfRecord(r: RunRecord): NotRunRecord | undefined {
  const first = date(r.tick);
  if (first === undefined || (r.outcome !== 'Skipped' && r.outcome !== 'Missed')) return undefined;
  return {
    outcome: r.outcome,
    firstTick: first,
    lastTick: date(r.lastTick) ?? first,
    count: r.count ?? 1,
    reason: r.reason ?? '',
    message: r.message ?? '',
    recordedAt: date(r.completionTime) ?? first,
  };
}
