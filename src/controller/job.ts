/**
 * A job as the planner sees it: its spec with every default applied, and the controller's own
 * bookkeeping read back from its status.
 */
import type { V1PodTemplateSpec } from '@kubernetes/client-node';
import type { ScheduledSingletonJob } from '../api/types.ts';
import { ANNOTATION_RUN_NOW } from '../api/types.ts';
import { withDefaults } from '../api/defaults.ts';
import { podTemplateOf } from '../runtime/cache-transform.ts';
import type { Bookkeeping, JobPolicy, JobView } from './snapshot.ts';

function date(s: string | Date | undefined): Date | undefined {
  if (s === undefined) return undefined;
  const d = s instanceof Date ? s : new Date(s);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export function jobView(job: ScheduledSingletonJob): JobView {
  const meta = job.metadata ?? {};
  const spec = withDefaults(job.spec);
  const policy: JobPolicy = {
    schedule: spec.schedule,
    timeZone: spec.timeZone,
    suspend: spec.suspend,
    concurrencyPolicy: spec.concurrencyPolicy,
    startingDeadlineSeconds: spec.startingDeadlineSeconds,
    maxPendingSeconds: spec.maxPendingSeconds,
    maxAttempts: spec.retry.maxAttempts,
    backoffSeconds: spec.retry.backoffSeconds,
    successfulRunsHistoryLimit: spec.successfulRunsHistoryLimit,
    failedRunsHistoryLimit: spec.failedRunsHistoryLimit,
  };
  const l = job.status?.ledger;
  const bookkeeping: Bookkeeping = {
    scheduleAnchor: date(l?.scheduleAnchor),
    observedSchedule: l?.observedSchedule,
    observedTimeZone: l?.observedTimeZone,
    suspendedSince: date(l?.suspendedSince),
    invalidSince: date(l?.invalidSince),
  };
  return {
    namespace: meta.namespace ?? '',
    name: meta.name ?? '',
    uid: meta.uid ?? '',
    generation: meta.generation ?? 0,
    createdAt: date(meta.creationTimestamp) ?? new Date(0),
    deleting: meta.deletionTimestamp !== undefined,
    policy,
    runNowToken: meta.annotations?.[ANNOTATION_RUN_NOW],
    bookkeeping,
  };
}

/** The Pod template; a cached job holds it as JSON text until a Pod is built (runtime/cache-transform.ts). */
export function templateOf(job: ScheduledSingletonJob): V1PodTemplateSpec {
  return podTemplateOf(job);
}
