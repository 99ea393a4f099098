// Which lane of the work queue a reconcile asks for (docs/adr/0012-tick-lane.md), driven through
// the simulated cluster: woken for its next tick, a job is due work; the follow-up of a reconcile
// that created a Pod is normal work.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_CONFIG, World, type Step } from './sim/world.ts';

const reconcile: Step = { kind: 'reconcile', proc: 0 };
const syncJobs: Step = { kind: 'sync', proc: 0, cache: 'jobs', quarters: 4 };
const syncPods: Step = { kind: 'sync', proc: 0, cache: 'pods', quarters: 4 };

describe('the lane a reconcile asks for', () => {
  for (const ledger of ['status', 'postgres'] as const) {
    it(`(${ledger}) before a tick: due, at that tick; after creating its Pod: normal, at once; then due again`, async () => {
      const world = new World({ ...BASE_CONFIG, ledger });
      const proc = (): NonNullable<(typeof world.procs)[0]> => {
        const p = world.procs[0];
        assert.ok(p !== undefined);
        return p;
      };
      await world.apply(reconcile);
      assert.equal(proc().requeueLane, 'due', 'woken for the first tick');
      const tickAt = proc().requeueAt;
      assert.ok(tickAt !== undefined && tickAt > world.now);

      await world.apply({ kind: 'wait', eighths: 8 });
      await world.apply(syncJobs);
      await world.apply(reconcile);
      assert.equal(world.server.created.length, 1, 'the tick created its Pod');
      assert.equal(proc().requeueLane, 'normal', 'the follow-up is normal work');
      assert.equal(proc().requeueAt, world.now, 'and comes at once');

      await world.apply(syncPods);
      await world.apply(syncJobs);
      await world.apply(reconcile);
      assert.equal(proc().requeueLane, 'due', 'woken for the next tick again');
    });
  }
});
