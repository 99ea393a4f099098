/**
 * What the benchmark creates: ScheduledSingletonJobs, CronJobs and bare Pods that are due at one
 * instant, with the same container everywhere so every scenario creates Pods of one size. Pure.
 *
 * Names and labels follow DESIGN.md, restated here on purpose: the benchmark is an independent
 * observer and imports nothing from src/.
 */
import type { V1CronJob, V1Pod } from '@kubernetes/client-node';

export const GROUP = 'ssj.dev';
export const VERSION = 'v1alpha1';
export const PLURAL = 'singletonjobs';
export const LABEL_JOB = 'ssj.dev/job';
export const LABEL_TICK = 'ssj.dev/tick';
export const LABEL_ATTEMPT = 'ssj.dev/attempt';

const container = { name: 'work', image: 'busybox:1.36', command: ['sh', '-c', 'true'] };

/** The i-th job of a run: `bench-00042`. */
export function jobName(i: number): string {
  return `bench-${String(i).padStart(5, '0')}`;
}

/** The operator's Pod name for a job's scheduled tick (attempt 1): `<job>-<unix seconds>`. */
export function podName(job: string, tickSeconds: number): string {
  return `${job}-${tickSeconds}`;
}

/** A 6-field schedule (leading seconds) that fires at `tick` (UTC) once a year. */
export function secondsSchedule(tick: Date): string {
  return `${tick.getUTCSeconds()} ${tick.getUTCMinutes()} ${tick.getUTCHours()} ${tick.getUTCDate()} ${tick.getUTCMonth() + 1} *`;
}

/** A 5-field schedule that fires at `tick` (UTC, a whole minute) once a year. */
export function minuteSchedule(tick: Date): string {
  if (tick.getUTCSeconds() !== 0 || tick.getUTCMilliseconds() !== 0) {
    throw new Error(`a CronJob tick must be a whole minute, not ${tick.toISOString()}`);
  }
  return `${tick.getUTCMinutes()} ${tick.getUTCHours()} ${tick.getUTCDate()} ${tick.getUTCMonth() + 1} *`;
}

/** The next whole second at least `leadMs` after `nowMs`. */
export function secondTickAfter(nowMs: number, leadMs: number): Date {
  return new Date(Math.ceil((nowMs + leadMs) / 1000) * 1000);
}

/** The next whole minute at least `leadMs` after `nowMs`. */
export function minuteTickAfter(nowMs: number, leadMs: number): Date {
  return new Date(Math.ceil((nowMs + leadMs) / 60_000) * 60_000);
}

export function singletonJob(name: string, schedule: string): Record<string, unknown> {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'ScheduledSingletonJob',
    metadata: { name },
    spec: { schedule, timeZone: 'UTC', template: { spec: { containers: [container] } } },
  };
}

export function cronJob(name: string, schedule: string): V1CronJob {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name },
    spec: {
      schedule,
      timeZone: 'Etc/UTC',
      jobTemplate: {
        spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', containers: [container] } } },
      },
    },
  };
}

/** RFC 3339 to the second, as the API server writes times. */
const rfc3339 = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** What the operator would create for a job's tick, minus the owner reference (no job exists). */
export function barePod(job: string, tickSeconds: number): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: podName(job, tickSeconds),
      labels: { [LABEL_JOB]: job, [LABEL_TICK]: String(tickSeconds), [LABEL_ATTEMPT]: '1' },
      annotations: {
        'ssj.dev/scheduled-time': rfc3339(new Date(tickSeconds * 1000)),
        'ssj.dev/term': '1',
        'ssj.dev/holder': 'bench-bare-client',
      },
    },
    spec: { restartPolicy: 'Never', containers: [container] },
  };
}

/**
 * A status of the size the operator's first reconcile gives a job due at `tickSeconds`: its four
 * conditions and the status ledger's bookkeeping (the bare client's claim mode starts from it).
 */
export function scheduledStatus(tickSeconds: number): Record<string, unknown> {
  const now = rfc3339(new Date());
  const next = rfc3339(new Date(tickSeconds * 1000));
  const condition = (type: string, status: string, reason: string, message: string): unknown => ({
    type,
    status,
    reason,
    message,
    lastTransitionTime: now,
    observedGeneration: 1,
  });
  return {
    observedGeneration: 1,
    nextScheduleTime: next,
    conditions: [
      condition('Ready', 'True', 'Scheduled', `next run at ${next}`),
      condition('Suspended', 'False', 'NotSuspended', 'spec.suspend is false'),
      condition('Running', 'False', 'NoActiveRun', 'no run is active'),
      condition('Degraded', 'False', 'NoRunsYet', 'no run has finished yet'),
    ],
    ledger: { scheduleAnchor: now, observedTimeZone: 'UTC', term: 1 },
  };
}

/** `status` with the status ledger's claim of the job's run at `tickSeconds` added, as the operator writes it. */
export function claimedStatus(
  status: unknown,
  job: string,
  tickSeconds: number,
  at: Date,
): Record<string, unknown> {
  const s = status as { ledger?: Record<string, unknown> } & Record<string, unknown>;
  const tick = rfc3339(new Date(tickSeconds * 1000));
  return {
    ...s,
    ledger: {
      ...s.ledger,
      latestTick: tick,
      claims: [
        {
          podName: podName(job, tickSeconds),
          tick,
          attempt: 1,
          claimedAt: rfc3339(at),
          state: 'Claimed',
          term: 1,
        },
      ],
    },
  };
}
