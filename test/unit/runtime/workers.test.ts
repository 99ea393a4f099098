/* eslint-disable @typescript-eslint/require-await -- async stubs of async interfaces read best as async functions */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ItemExponentialFailureRateLimiter } from '../../../src/runtime/rate-limiter.ts';
import { createRateLimitingQueue } from '../../../src/runtime/rate-limiting-queue.ts';
import { runWorkers } from '../../../src/runtime/workers.ts';
import type { ReconcileResult } from '../../../src/runtime/workers.ts';
import { ManualClock, settle } from './manual-clock.ts';

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((res) => {
    resolve = res;
  });
  return { promise, resolve };
}

function setup() {
  const clock = new ManualClock();
  const queue = createRateLimitingQueue({
    clock,
    rateLimiter: new ItemExponentialFailureRateLimiter(5, 1000),
  });
  const ac = new AbortController();
  const errors: [string, unknown][] = [];
  return { clock, queue, ac, errors, onError: (key: string, err: unknown) => errors.push([key, err]) };
}

describe('runWorkers', () => {
  it('returns to the event loop between keys: a timer runs amid reconciles that never wait on I/O', async () => {
    const { queue, ac, onError } = setup();
    const KEYS = 10_000;
    let reconciled = 0;
    for (let i = 0; i < KEYS; i++) queue.add(`k${i}`);
    // What the lease's renewal timer would see: how far the first pass had got when it fired.
    let seenByTimer: number | undefined;
    setTimeout(() => {
      seenByTimer = reconciled;
    }, 1);
    const done = runWorkers(
      queue,
      async () => {
        reconciled++;
      },
      { concurrency: 2, signal: ac.signal, onError },
    );
    while (reconciled < KEYS) await new Promise<void>((resolve) => setImmediate(resolve));
    assert.ok(seenByTimer !== undefined && seenByTimer < KEYS, `the timer saw ${seenByTimer} of ${KEYS}`);
    ac.abort();
    await done;
  });

  it('never runs more than `concurrency` reconciles at once', async () => {
    const { queue, ac, onError } = setup();
    let running = 0;
    let peak = 0;
    const gates = new Map<string, Deferred>();
    const done = runWorkers(
      queue,
      async (key) => {
        running++;
        peak = Math.max(peak, running);
        const gate = deferred();
        gates.set(key, gate);
        await gate.promise;
        running--;
      },
      { concurrency: 2, signal: ac.signal, onError },
    );
    for (const k of ['a', 'b', 'c', 'd', 'e']) queue.add(k);
    await settle();
    assert.equal(running, 2);
    for (const k of ['a', 'b', 'c', 'd', 'e']) {
      await settle();
      gates.get(k)?.resolve();
      await settle();
    }
    await settle();
    assert.equal(peak, 2);
    assert.equal(running, 0);
    assert.equal(gates.size, 5, 'every key reconciled');
    ac.abort();
    await done;
  });

  it('never reconciles one key twice at once, and reconciles it again when it was added meanwhile', async () => {
    const { queue, ac, onError } = setup();
    const calls: string[] = [];
    const gate = deferred();
    let concurrentSameKey = false;
    let inFlight = false;
    const done = runWorkers(
      queue,
      async (key) => {
        if (inFlight) concurrentSameKey = true;
        inFlight = true;
        calls.push(key);
        if (calls.length === 1) await gate.promise;
        inFlight = false;
      },
      { concurrency: 4, signal: ac.signal, onError },
    );
    queue.add('k');
    await settle();
    queue.add('k'); // while its reconcile runs
    await settle();
    assert.deepEqual(calls, ['k']);
    gate.resolve();
    await settle();
    assert.deepEqual(calls, ['k', 'k']);
    assert.equal(concurrentSameKey, false);
    ac.abort();
    await done;
  });

  it('on error: reports it, and retries the key after its rate-limited back-off', async () => {
    const { clock, queue, ac, errors, onError } = setup();
    let calls = 0;
    const done = runWorkers(
      queue,
      async () => {
        calls++;
        if (calls <= 2) throw new Error(`boom ${calls}`);
      },
      { concurrency: 1, signal: ac.signal, onError },
    );
    queue.add('k');
    await settle();
    assert.equal(calls, 1);
    assert.equal(queue.numRequeues('k'), 1);
    clock.advance(4);
    await settle();
    assert.equal(calls, 1, 'not before the 5 ms back-off');
    clock.advance(1);
    await settle();
    assert.equal(calls, 2);
    assert.equal(queue.numRequeues('k'), 2);
    clock.advance(10);
    await settle();
    assert.equal(calls, 3);
    assert.equal(queue.numRequeues('k'), 0, 'success forgets the key');
    assert.deepEqual(
      errors.map(([k, e]) => [k, (e as Error).message]),
      [
        ['k', 'boom 1'],
        ['k', 'boom 2'],
      ],
    );
    ac.abort();
    await done;
  });

  it('on requeueAfterMs: forgets the failures and reconciles the key again after that delay', async () => {
    const { clock, queue, ac, onError } = setup();
    let calls = 0;
    const done = runWorkers(
      queue,
      async (): Promise<ReconcileResult> => {
        calls++;
        if (calls === 1) throw new Error('first fails');
        return { requeueAfterMs: 60_000 };
      },
      { concurrency: 1, signal: ac.signal, onError },
    );
    queue.add('k');
    await settle();
    clock.advance(5);
    await settle();
    assert.equal(calls, 2);
    assert.equal(queue.numRequeues('k'), 0);
    clock.advance(59_999);
    await settle();
    assert.equal(calls, 2);
    clock.advance(1);
    await settle();
    assert.equal(calls, 3);
    ac.abort();
    await done;
  });

  it('requeueAfterMs of 0 reconciles the key again at once', async () => {
    const { queue, ac, onError } = setup();
    let calls = 0;
    const done = runWorkers(
      queue,
      async () => {
        calls++;
        return calls === 1 ? { requeueAfterMs: 0 } : undefined;
      },
      { concurrency: 1, signal: ac.signal, onError },
    );
    queue.add('k');
    await settle();
    await settle();
    assert.equal(calls, 2);
    ac.abort();
    await done;
  });

  it('treats a requeueAfterMs that is not finite as an error with back-off, not a hot loop', async () => {
    const { clock, queue, ac, errors, onError } = setup();
    let calls = 0;
    const done = runWorkers(
      queue,
      async () => {
        calls++;
        return { requeueAfterMs: Number.NaN };
      },
      { concurrency: 1, signal: ac.signal, onError },
    );
    queue.add('k');
    await settle();
    await settle();
    assert.equal(calls, 1);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]?.[1]), /not finite/);
    clock.advance(5);
    await settle();
    assert.equal(calls, 2);
    ac.abort();
    await done;
  });

  it('keeps working when onError itself throws', async () => {
    const { queue, ac } = setup();
    let calls = 0;
    const done = runWorkers(
      queue,
      async (key) => {
        calls++;
        if (key === 'bad') throw new Error('x');
      },
      {
        concurrency: 1,
        signal: ac.signal,
        onError: () => {
          throw new Error('broken hook');
        },
      },
    );
    queue.add('bad');
    queue.add('good');
    await settle();
    assert.equal(calls, 2);
    ac.abort();
    await done;
  });

  it('on abort: shuts the queue, aborts in-flight reconciles, skips queued keys, and resolves when they finish', async () => {
    const { queue, ac, errors, onError } = setup();
    const seen: string[] = [];
    let signalSeen: AbortSignal | undefined;
    const finishing = deferred();
    const done = runWorkers(
      queue,
      async (key, signal) => {
        seen.push(key);
        signalSeen = signal;
        await new Promise<void>((resolve) => {
          signal.addEventListener('abort', () => {
            resolve();
          });
        });
        await finishing.promise;
        throw new Error('aborted'); // cut short: must not be reported
      },
      { concurrency: 1, signal: ac.signal, onError },
    );
    queue.add('a');
    queue.add('b');
    await settle();
    let resolved = false;
    void done.then(() => (resolved = true));
    ac.abort();
    await settle();
    assert.equal(signalSeen?.aborted, true);
    assert.equal(queue.shuttingDown(), true);
    assert.equal(resolved, false, 'waits for the in-flight reconcile');
    finishing.resolve();
    await done;
    assert.deepEqual(seen, ['a'], 'b was dropped');
    assert.deepEqual(errors, []);
  });

  it('resolves when the queue is shut down by someone else, after draining what was queued', async () => {
    const { queue, ac, onError } = setup();
    const seen: string[] = [];
    queue.add('a');
    queue.add('b');
    queue.shutDown();
    await runWorkers(
      queue,
      async (key) => {
        seen.push(key);
      },
      { concurrency: 3, signal: ac.signal, onError },
    );
    assert.deepEqual(seen, ['a', 'b']);
  });

  it('refuses a concurrency that is not a positive integer', async () => {
    const { queue, ac, onError } = setup();
    await assert.rejects(
      runWorkers(queue, async () => undefined, { concurrency: 0, signal: ac.signal, onError }),
    );
    await assert.rejects(
      runWorkers(queue, async () => undefined, { concurrency: 1.5, signal: ac.signal, onError }),
    );
  });
});
