/**
 * fast-check arbitraries for the simulation: a job's configuration and a list of steps
 * (./world.ts) that interleave reconciles, informer lag, Pod life cycles, failures and crashes
 * of calls, process restarts, clock jumps and suspensions. Shrinking works on the step list, so
 * a counterexample comes out as a short story.
 */
import fc from 'fast-check';
import type { Fault } from './controller.ts';
import type { PodAct, Step, WorldConfig } from './world.ts';

const SCHEDULES: readonly (readonly [string, number])[] = [
  ['*/2 * * * * *', 2_000],
  ['*/5 * * * * *', 5_000],
  ['* * * * *', 60_000],
  ['*/2 * * * *', 120_000],
];

export interface ConfigOptions {
  readonly ledger: 'status' | 'postgres';
  readonly processes: number;
  /** Whether the admission policy fences Pods of an old term; random when undefined. */
  readonly admission?: boolean;
}

export function configArb(o: ConfigOptions): fc.Arbitrary<WorldConfig> {
  return fc
    .record({
      schedule: fc.constantFrom(...SCHEDULES),
      concurrencyPolicy: fc.constantFrom<'Forbid' | 'Replace'>('Forbid', 'Replace'),
      maxAttempts: fc.integer({ min: 1, max: 3 }),
      backoffSeconds: fc.integer({ min: 0, max: 4 }),
      maxPendingPeriods: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
      deadlinePeriods: fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined }),
      successfulRunsHistoryLimit: fc.integer({ min: 0, max: 3 }),
      failedRunsHistoryLimit: fc.integer({ min: 0, max: 2 }),
      admission: o.admission === undefined ? fc.boolean() : fc.constant(o.admission),
      createdEighths: fc.integer({ min: 0, max: 7 }),
    })
    .map((r) => {
      const [schedule, periodMs] = r.schedule;
      // Deadlines in quarters of the period, so they matter whatever the schedule's pace.
      const seconds = (quarters: number | undefined): number | undefined =>
        quarters === undefined ? undefined : Math.round((quarters * periodMs) / 4 / 1000);
      return {
        schedule,
        periodMs,
        concurrencyPolicy: r.concurrencyPolicy,
        maxAttempts: r.maxAttempts,
        backoffSeconds: r.backoffSeconds,
        maxPendingSeconds:
          r.maxPendingPeriods === undefined ? undefined : Math.max(1, seconds(r.maxPendingPeriods) ?? 1),
        startingDeadlineSeconds: seconds(r.deadlinePeriods),
        successfulRunsHistoryLimit: r.successfulRunsHistoryLimit,
        failedRunsHistoryLimit: r.failedRunsHistoryLimit,
        ledger: o.ledger,
        processes: o.processes,
        admission: r.admission,
        createdOffsetMs: Math.round((r.createdEighths * periodMs) / 8),
      };
    });
}

const proc = fc.integer({ min: 0, max: 1 });

const fault: fc.Arbitrary<Fault> = fc.oneof(
  { arbitrary: fc.constant<Fault>('ok'), weight: 6 },
  {
    arbitrary: fc.constantFrom<Fault>('error-before', 'error-after', 'crash-before', 'crash-after'),
    weight: 4,
  },
);

const podAct: fc.Arbitrary<PodAct> = fc.oneof(
  { arbitrary: fc.constantFrom<PodAct>('start', 'succeed', 'fail'), weight: 6 },
  { arbitrary: fc.constantFrom<PodAct>('evict', 'delete', 'terminate', 'forceRemove'), weight: 3 },
);

const wait = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 8 }), weight: 8 }, // within a period
  { arbitrary: fc.integer({ min: 8, max: 40 }), weight: 2 }, // a few periods
  { arbitrary: fc.integer({ min: 40, max: 240 }), weight: 1 }, // the controllers were down a while
);

export const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('reconcile' as const), proc }), weight: 20 },
  { arbitrary: fc.record({ kind: fc.constant('reconcileAtRequeue' as const), proc }), weight: 12 },
  { arbitrary: fc.record({ kind: fc.constant('begin' as const), proc }), weight: 5 },
  { arbitrary: fc.record({ kind: fc.constant('step' as const), proc, fault }), weight: 10 },
  {
    arbitrary: fc.record({
      kind: fc.constant('armExit' as const),
      proc,
      point: fc.constantFrom('after-claim' as const, 'after-create' as const),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant('crash' as const), proc }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant('sync' as const),
      proc,
      cache: fc.constantFrom('jobs' as const, 'pods' as const),
      quarters: fc.oneof(
        { arbitrary: fc.constant(4), weight: 3 },
        { arbitrary: fc.integer({ min: 1, max: 3 }), weight: 1 },
      ),
    }),
    weight: 25,
  },
  { arbitrary: fc.record({ kind: fc.constant('pod' as const), pick: fc.nat(7), act: podAct }), weight: 25 },
  { arbitrary: fc.record({ kind: fc.constant('wait' as const), eighths: wait }), weight: 14 },
  { arbitrary: fc.record({ kind: fc.constant('suspend' as const), value: fc.boolean() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('ledgerUp' as const), up: fc.boolean() }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant('runNow' as const),
      token: fc.constantFrom('a', 'b', 'c', 'd'),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant('quota' as const), full: fc.boolean() }), weight: 1 },
);

export function stepsArb(maxLength: number): fc.Arbitrary<Step[]> {
  return fc.array(stepArb, { minLength: 1, maxLength, size: 'max' });
}
