// The API writes of a tick share the workers' places (src/controller/write-slots.ts), however
// many reconciles run, and a waiting create goes before a waiting status write.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ScheduledSingletonJob } from '../../../src/api/types.ts';
import type { CreateResult, KubeWriter } from '../../../src/controller/ports.ts';
import { withWriteSlots } from '../../../src/controller/write-slots.ts';

/** A KubeWriter whose writes are the given ones; every other call answers at once. */
function writesHeldBy(
  writes: Pick<KubeWriter, 'createPod' | 'replaceJobStatus'> & Partial<KubeWriter>,
): KubeWriter {
  return {
    getPod: () => Promise.resolve(undefined),
    deletePod: () => Promise.resolve(),
    removeFinalizer: () => Promise.resolve('gone'),
    getJob: () => Promise.resolve(undefined),
    dryRunPod: () => Promise.resolve({ kind: 'ok' }),
    ...writes,
  };
}

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
    const kube = writesHeldBy({
      createPod: (pod) => held<CreateResult>({ kind: 'created', pod }),
      replaceJobStatus: (job) => held(job),
      getPod: () => {
        reads++;
        return Promise.resolve(undefined);
      },
    });
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

  it('gives a free slot to a waiting create before any waiting status write, each kind in order', async () => {
    const started: string[] = [];
    const gates: (() => void)[] = [];
    const held = async <T>(name: string, value: T): Promise<T> => {
      started.push(name);
      await new Promise<void>((resolve) => gates.push(resolve));
      return value;
    };
    const kube = writesHeldBy({
      createPod: (pod) => held<CreateResult>(`create ${pod.metadata?.name}`, { kind: 'created', pod }),
      replaceJobStatus: (job) => held(`status ${job.metadata?.name}`, job),
    });
    const slotted = withWriteSlots(kube, 1);
    const status = (name: string) =>
      slotted.replaceJobStatus({ metadata: { name } } as ScheduledSingletonJob);
    const create = (name: string) => slotted.createPod({ metadata: { name } });
    // The claim of a, holding the one slot; then the claims of b and d and the creates of a and c.
    const writes = [status('a'), status('b'), create('a'), status('d'), create('c')];
    await new Promise((resolve) => setImmediate(resolve));
    while (gates.length > 0) {
      for (const open of gates.splice(0)) open();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(writes);
    assert.deepEqual(started, ['status a', 'create a', 'create c', 'status b', 'status d']);
  });
});
