// The API writes of a tick share the workers' places (src/controller/write-slots.ts), however
// many reconciles run.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ScheduledSingletonJob } from '../../../src/api/types.ts';
import type { CreateResult, KubeWriter } from '../../../src/controller/ports.ts';
import { withWriteSlots } from '../../../src/controller/write-slots.ts';

describe('write slots', () => {
  it('never has more creates and status writes in flight than its slots; reads are not held', async () => {
    let inFlight = 0;
    let peak = 0;
    let reads = 0;
    const gates: (() => void)[] = [];
    const held = async <T>(value: T): Promise<T> => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise<void>((resolve) => gates.push(resolve));
      inFlight--;
      return value;
    };
    const kube: KubeWriter = {
      createPod: (pod) => held<CreateResult>({ kind: 'created', pod }),
      replaceJobStatus: (job) => held(job),
      getPod: () => {
        reads++;
        return Promise.resolve(undefined);
      },
      deletePod: () => Promise.resolve(),
      removeFinalizer: () => Promise.resolve('gone'),
      getJob: () => Promise.resolve(undefined),
      dryRunPod: () => Promise.resolve({ kind: 'ok' }),
    };
    const slotted = withWriteSlots(kube, 3);
    const writes = [
      ...Array.from({ length: 5 }, () => slotted.createPod({})),
      ...Array.from({ length: 5 }, () => slotted.replaceJobStatus({} as ScheduledSingletonJob)),
    ];
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(inFlight, 3);
    await slotted.getPod('ns', 'p');
    assert.equal(reads, 1, 'a read passes while every slot is taken');
    while (gates.length > 0) {
      for (const open of gates.splice(0)) open();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(writes);
    assert.equal(peak, 3);
    assert.equal(inFlight, 0);
  });
});
