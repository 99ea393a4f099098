// What the reconciler reports to the metrics (ReconcileObserver), driven through the simulated
// cluster: run durations, ticks not run by reason, one observation per ledger write (failed
// ones included), and each job's health after every reconcile but one that created Pods (its
// follow-up reports it).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { JobHealth, ReconcileObserver } from '../../../src/controller/ports.ts';
import { BASE_CONFIG, World, type Step, type WorldConfig } from './sim/world.ts';

interface Seen {
  runs: { outcome: string; seconds: number | undefined }[];
  notRun: { outcome: string; reason: string; count: number }[];
  writes: { ledger: string; ok: boolean }[];
  health: (JobHealth | undefined)[];
}

function recorder(): { observer: ReconcileObserver; seen: Seen } {
  const seen: Seen = { runs: [], notRun: [], writes: [], health: [] };
  const observer: ReconcileObserver = {
    podCreated: () => undefined,
    runFinished: (outcome, seconds) => seen.runs.push({ outcome, seconds }),
    ticksNotRun: (outcome, reason, count) => seen.notRun.push({ outcome, reason, count }),
    statusWrite: () => undefined,
    ledgerAvailable: () => undefined,
    ledgerWrite: (ledger, seconds, ok) => {
      assert.ok(seconds >= 0);
      seen.writes.push({ ledger, ok });
    },
    jobHealth: (_job, health) => seen.health.push(health),
  };
  return { observer, seen };
}

const config = (over: Partial<WorldConfig>): WorldConfig => ({ ...BASE_CONFIG, ...over });

const toTick: Step = { kind: 'wait', eighths: 8 };
const reconcile: Step = { kind: 'reconcile', proc: 0 };
const syncPods: Step = { kind: 'sync', proc: 0, cache: 'pods', quarters: 4 };
const syncJobs: Step = { kind: 'sync', proc: 0, cache: 'jobs', quarters: 4 };
const pod = (act: 'start' | 'fail' | 'succeed'): Step => ({ kind: 'pod', pick: 0, act });
/** One tick whose Pod starts, runs a quarter period and ends `how`. */
const oneRun = (how: 'fail' | 'succeed'): Step[] => [
  toTick,
  syncJobs,
  reconcile,
  reconcile,
  syncPods,
  pod('start'),
  syncPods,
  reconcile,
  { kind: 'wait', eighths: 2 },
  pod(how),
  syncPods,
  syncJobs,
  reconcile,
  syncJobs,
  reconcile,
];

async function run(world: World, steps: readonly Step[]): Promise<void> {
  for (const step of steps) await world.apply(step);
}

/** Lets the process's calls through until it waits at `label`, then fails that call. */
async function failAt(world: World, label: string): Promise<void> {
  await world.apply({ kind: 'begin', proc: 0 });
  for (let i = 0; i < 50 && world.procs[0]?.waitingAt !== label; i++)
    await world.apply({ kind: 'step', proc: 0, fault: 'ok' });
  assert.equal(world.procs[0]?.waitingAt, label);
  await world.apply({ kind: 'step', proc: 0, fault: 'error-before' });
}

describe('what the reconciler reports to the metrics', () => {
  for (const ledger of ['status', 'postgres'] as const) {
    it(`(${ledger}) a failed run's duration from its Pod's start, the streak after it, and its reset by a success`, async () => {
      const { observer, seen } = recorder();
      const world = new World(config({ ledger, observer }));
      await run(world, oneRun('fail'));
      const failed = seen.runs.find((r) => r.outcome === 'Failed');
      assert.ok(failed !== undefined, JSON.stringify(seen.runs));
      // The Pod ran a quarter of the 2-second period.
      assert.equal(failed.seconds, 0.5);
      assert.equal(seen.health.at(-1)?.consecutiveFailures, 1);
      await run(world, oneRun('succeed'));
      assert.equal(seen.runs.at(-1)?.outcome, 'Succeeded');
      assert.equal(seen.health.at(-1)?.consecutiveFailures, 0);
      assert.ok(seen.writes.length > 0 && seen.writes.every((w) => w.ledger === ledger && w.ok));
    });

    it(`(${ledger}) a ledger write that fails is observed as an error`, async () => {
      const { observer, seen } = recorder();
      const world = new World(config({ ledger, observer }));
      await world.apply(toTick);
      await failAt(world, ledger === 'postgres' ? 'ledger.write' : 'replaceJobStatus');
      assert.deepEqual(seen.writes.at(-1), { ledger, ok: false });
    });
  }

  it('ticks missed while no controller acted are reported with their reason', async () => {
    const { observer, seen } = recorder();
    const world = new World(config({ observer }));
    await run(world, [{ kind: 'wait', eighths: 8 * 4 }, reconcile]);
    const missed = { outcome: 'Missed', reason: 'NoController', count: 1 };
    assert.deepEqual(seen.notRun, [missed, missed, missed]);
  });

  it('a suspended job reports no periods since success; a running one does', async () => {
    const { observer, seen } = recorder();
    const world = new World(config({ observer }));
    await run(world, [toTick, reconcile]);
    assert.equal(
      seen.health.length,
      0,
      'the reconcile that created the Pod leaves the health to its follow-up',
    );
    await run(world, [reconcile]);
    assert.equal(typeof seen.health.at(-1)?.periodsSinceSuccess, 'number');
    await run(world, [{ kind: 'suspend', value: true }, syncJobs, reconcile]);
    assert.equal(seen.health.at(-1)?.periodsSinceSuccess, undefined);
  });
});
