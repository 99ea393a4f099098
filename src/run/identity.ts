/**
 * A run's identity and the names derived from it.
 *
 * Contract: a run is identified by (job UID, tick, attempt) for a scheduled run and by
 * (job UID, run-now token, attempt) for a manual one. The Pod name is a pure function of the
 * job name and that identity, so while a run's Pod exists the API server refuses a second
 * create with 409 AlreadyExists whatever any controller believes. Job names are at most 49
 * characters (the CRD enforces it), so every name here fits the 63 characters of a label value
 * and a Pod name: 49 + "-" + 10 digits of Unix seconds + "-10" for the last attempt. That holds
 * while Unix seconds have 10 digits, that is for ticks before 2286-11-20.
 *
 * Not guaranteed here: uniqueness across jobs with the same name but different UIDs (a job
 * deleted and recreated under its name reuses Pod names once the old Pods are gone; the ledger
 * keys runs by UID, so their histories stay apart).
 */
import { createHash } from 'node:crypto';

export type RunId =
  | { readonly kind: 'scheduled'; readonly tick: Date; readonly attempt: number }
  | { readonly kind: 'manual'; readonly token: string; readonly attempt: number };

export const MAX_JOB_NAME_LENGTH = 49;

export function tickSeconds(tick: Date): number {
  return Math.floor(tick.getTime() / 1000);
}

export function manualSuffix(token: string): string {
  return 'm' + createHash('sha256').update(token).digest('hex').slice(0, 8);
}

export function podName(jobName: string, run: RunId): string {
  const base =
    run.kind === 'scheduled'
      ? `${jobName}-${tickSeconds(run.tick)}`
      : `${jobName}-${manualSuffix(run.token)}`;
  return run.attempt > 1 ? `${base}-${run.attempt}` : base;
}

/** A stable string key for a run within one job: used to match Pods, ledger rows and status entries. */
export function runKey(run: RunId): string {
  return run.kind === 'scheduled'
    ? `t${tickSeconds(run.tick)}/${run.attempt}`
    : `m${manualSuffix(run.token)}/${run.attempt}`;
}

/** Two runs of the same tick (or token), whatever their attempts. */
export function sameOccasion(a: RunId, b: RunId): boolean {
  if (a.kind === 'scheduled' && b.kind === 'scheduled') return tickSeconds(a.tick) === tickSeconds(b.tick);
  if (a.kind === 'manual' && b.kind === 'manual') return a.token === b.token;
  return false;
}

export function nextAttempt(run: RunId): RunId {
  return { ...run, attempt: run.attempt + 1 };
}
