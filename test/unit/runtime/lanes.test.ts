// The work queue's two lanes (docs/adr/0012-tick-lane.md): due work (claims and creates of a
// tick) is handed out before normal work (records, Events, cleanup), through every layer.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createQueue, type Lane } from '../../../src/runtime/queue.ts';
import { createDelayingQueue } from '../../../src/runtime/delaying-queue.ts';
import { createRateLimitingQueue } from '../../../src/runtime/rate-limiting-queue.ts';
import { ItemExponentialFailureRateLimiter } from '../../../src/runtime/rate-limiter.ts';
import { runWorkers } from '../../../src/runtime/workers.ts';
import { HeldEvents } from '../../../src/runtime/held-events.ts';
import type { EventType, InvolvedObject } from '../../../src/runtime/events.ts';
import { ManualClock, settle } from './manual-clock.ts';

async function drain(q: ReturnType<typeof createQueue>): Promise<string[]> {
  const out: string[] = [];
  while (q.len() > 0) {
    const key = await q.get();
    if (key === undefined) break;
    out.push(key);
    q.done(key);
  }
  return out;
}

describe('work queue lanes', () => {
  it('hands every due key out before any normal key, FIFO within each lane', async () => {
    const q = createQueue();
    q.add('n1');
    q.add('d1', 'due');
    q.add('n2', 'normal');
    q.add('d2', 'due');
    assert.equal(q.len(), 4);
    assert.deepEqual(await drain(q), ['d1', 'd2', 'n1', 'n2']);
  });

  it('moves a queued normal key to the due lane, never back, and hands it out once', async () => {
    const q = createQueue();
    q.add('a');
    q.add('b');
    q.add('a', 'due');
    q.add('a', 'normal'); // no demotion
    assert.equal(q.len(), 2);
    assert.deepEqual(await drain(q), ['a', 'b']);
    assert.equal(q.len(), 0);
  });

  it('keeps FIFO for a key that was promoted, handed out and queued again as normal work', async () => {
    const q = createQueue();
    q.add('a');
    q.add('a', 'due');
    assert.equal(await q.get(), 'a');
    q.done('a');
    q.add('b');
    q.add('a'); // behind b: the stale entry of its first add must not count
    assert.deepEqual(await drain(q), ['b', 'a']);
  });

  it('requeues a key re-added while processing in the highest lane it was re-added to', async () => {
    const q = createQueue();
    q.add('a');
    q.add('x');
    assert.equal(await q.get(), 'a');
    assert.equal(q.laneOf('a'), 'normal');
    q.add('a');
    q.add('a', 'due');
    q.done('a');
    assert.equal(await q.get(), 'a', 'due, so ahead of x');
    assert.equal(q.laneOf('a'), 'due');
  });

  it('counts due keys queued and processing, and tells when they have drained', async () => {
    const q = createQueue();
    let drained = 0;
    q.onDueDrained(() => drained++);
    q.add('d1', 'due');
    q.add('d2', 'due');
    q.add('n');
    assert.equal(q.dueCount(), 2);
    const d1 = await q.get();
    const d2 = await q.get();
    assert.deepEqual([d1, d2], ['d1', 'd2']);
    assert.equal(q.dueCount(), 2, 'processing still counts');
    q.done('d1');
    assert.equal(drained, 0);
    q.done('d2');
    assert.equal(q.dueCount(), 0);
    assert.equal(drained, 1);
    const n = await q.get();
    q.done(n ?? '');
    assert.equal(drained, 1, 'normal work does not signal');
  });

  it("get('due') hands out due keys only, waits while only normal keys are queued, and ends at shutdown", async () => {
    const q = createQueue();
    /** A due-only worker's get; `key` stays null while it waits. */
    const dueGet = (): { key: string | undefined | null } => {
      const got: { key: string | undefined | null } = { key: null };
      void q.get('due').then((k) => (got.key = k));
      return got;
    };
    q.add('n1');
    const got = dueGet();
    await settle();
    assert.equal(got.key, null, 'a normal key is not handed to a due-only worker (null: still waiting)');
    q.add('d1', 'due');
    await settle();
    assert.equal(got.key, 'd1');
    q.done('d1');
    // A normal key promoted to the due lane reaches a due-only worker.
    const promoted = dueGet();
    q.add('n1', 'due');
    await settle();
    assert.equal(promoted.key, 'n1');
    q.done('n1');
    const last = dueGet();
    q.add('n2');
    assert.equal(await q.get(), 'n2', 'a worker for any key still takes normal work');
    q.shutDown();
    await settle();
    assert.equal(last.key, undefined);
  });

  it('property: any interleaving hands each dirty key out once, due before normal, counts consistent', async () => {
    // 'waitDue': a due-only worker waits for a key (the extra workers of a tick).
    type Op = { op: 'add'; key: string; lane: Lane } | { op: 'take' } | { op: 'waitDue' };
    const op = fc.oneof(
      fc.record({
        op: fc.constant('add' as const),
        key: fc.constantFrom('a', 'b', 'c', 'd'),
        lane: fc.constantFrom<Lane>('due', 'normal'),
      }),
      fc.record({ op: fc.constant('take' as const) }),
      fc.record({ op: fc.constant('waitDue' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops: Op[]) => {
        const q = createQueue();
        const model = new Map<string, Lane>();
        let waiting: { key?: string | undefined; settled: boolean } | undefined;
        for (const o of ops) {
          if (o.op === 'waitDue') {
            if (waiting === undefined) {
              const w: { key?: string | undefined; settled: boolean } = { settled: false };
              waiting = w;
              void q.get('due').then((key) => {
                w.key = key;
                w.settled = true;
              });
            }
          } else if (o.op === 'add') {
            if (model.get(o.key) !== 'due') model.set(o.key, o.lane);
            q.add(o.key, o.lane);
          } else if (q.len() > 0) {
            const key = await q.get();
            assert.ok(key !== undefined);
            const lane = model.get(key);
            assert.ok(lane !== undefined, `${key} handed out but not dirty`);
            if (lane === 'normal') assert.ok(![...model.values()].includes('due'), 'normal before due');
            assert.equal(q.laneOf(key), lane);
            model.delete(key);
            q.done(key);
          }
          await settle();
          if (waiting?.settled === true) {
            const key = waiting.key;
            assert.ok(key !== undefined);
            assert.equal(model.get(key), 'due', `${key} handed to a due-only worker but not dirty as due`);
            assert.equal(q.laneOf(key), 'due');
            model.delete(key);
            q.done(key);
            waiting = undefined;
            await settle();
          }
          assert.equal(q.len(), model.size);
          assert.equal(q.dueCount(), [...model.values()].filter((l) => l === 'due').length);
        }
      }),
    );
  });
});

describe('delaying queue lanes', () => {
  it('adds a waiting key in its lane when it is ready', async () => {
    const clock = new ManualClock();
    const q = createDelayingQueue({ clock });
    q.addAfter('n', 100);
    q.addAfter('d', 100, 'due');
    clock.advance(100);
    assert.equal(await q.get(), 'd');
    assert.equal(await q.get(), 'n');
  });

  it('takes the lane of the earlier request, and the due lane at equal times', async () => {
    const clock = new ManualClock();
    const q = createDelayingQueue({ clock });
    q.addAfter('a', 1000, 'due');
    q.addAfter('a', 100); // earlier: wins, normal
    q.addAfter('b', 500);
    q.addAfter('b', 500, 'due'); // same time: due
    q.addAfter('c', 50);
    clock.advance(100);
    assert.deepEqual([await q.get(), await q.get()], ['c', 'a']);
    clock.advance(400);
    assert.equal(await q.get(), 'b');
    assert.equal(q.laneOf('a'), 'normal');
    assert.equal(q.laneOf('b'), 'due');
  });
});

describe('workers and lanes', () => {
  it('requeues in the lane a reconcile asks for, and retries a failure in the lane it came from', async () => {
    const clock = new ManualClock();
    const queue = createRateLimitingQueue({
      clock,
      rateLimiter: new ItemExponentialFailureRateLimiter(5, 1000),
    });
    const ac = new AbortController();
    const seen: [string, Lane | undefined][] = [];
    let failDue = true;
    const done = runWorkers(
      queue,
      async (key) => {
        seen.push([key, queue.laneOf(key)]);
        await Promise.resolve();
        if (key === 'tick') return { requeueAfterMs: 1000, lane: 'due' };
        if (key === 'fail' && failDue) {
          failDue = false;
          throw new Error('claim failed');
        }
        return undefined;
      },
      { concurrency: 1, signal: ac.signal, onError: () => undefined },
    );
    queue.add('tick');
    queue.add('fail', 'due');
    await settle();
    clock.advance(5); // the failure's back-off
    await settle();
    clock.advance(995); // the tick
    await settle();
    ac.abort();
    await done;
    assert.deepEqual(seen, [
      ['tick', 'normal'],
      ['fail', 'due'],
      ['fail', 'due'],
      ['tick', 'due'],
    ]);
  });

  it('runs due keys on the extra workers too, normal keys on `concurrency` workers only', async () => {
    const queue = createRateLimitingQueue();
    const ac = new AbortController();
    const running: Record<Lane, number> = { due: 0, normal: 0 };
    const peak: Record<Lane, number> = { due: 0, normal: 0 };
    const gates: (() => void)[] = [];
    // More normal keys than all workers together: a due-only worker that took one would show.
    for (let i = 0; i < 10; i++) queue.add(`n${i}`);
    for (let i = 0; i < 8; i++) queue.add(`d${i}`, 'due');
    const done = runWorkers(
      queue,
      async (key) => {
        const lane = queue.laneOf(key) ?? 'normal';
        running[lane]++;
        peak[lane] = Math.max(peak[lane], running[lane]);
        await new Promise<void>((resolve) => gates.push(resolve));
        running[lane]--;
        return undefined;
      },
      { concurrency: 2, dueConcurrency: 3, signal: ac.signal, onError: () => undefined },
    );
    await settle();
    assert.deepEqual(running, { due: 5, normal: 0 }, 'all five workers take due keys first');
    while (gates.length > 0) {
      for (const open of gates.splice(0)) open();
      await settle();
      assert.ok(running.normal <= 2, `at most two normal reconciles at once, saw ${running.normal}`);
    }
    assert.deepEqual(peak, { due: 5, normal: 2 });
    ac.abort();
    await done;
  });
});

describe('held events', () => {
  const obj: InvolvedObject = {
    apiVersion: 'v1',
    kind: 'X',
    metadata: { name: 'a', namespace: 'n', uid: 'u' },
  };
  function recorder(): { sent: string[]; event: (o: InvolvedObject, t: EventType, r: string) => void } {
    const sent: string[] = [];
    return {
      sent,
      event: (_o, _t, r) => {
        sent.push(r);
      },
    };
  }

  it('passes Events on at once while not holding, keeps them in order while holding', () => {
    const inner = recorder();
    let holding = false;
    const held = new HeldEvents(inner, () => holding);
    held.event(obj, 'Normal', 'A', '');
    holding = true;
    held.event(obj, 'Normal', 'B', '');
    held.event(obj, 'Warning', 'C', '');
    assert.deepEqual(inner.sent, ['A']);
    assert.equal(held.size, 2);
    holding = false;
    held.release();
    assert.deepEqual(inner.sent, ['A', 'B', 'C']);
    assert.equal(held.size, 0);
  });

  it('keeps at most max Events; beyond that they pass on at once', () => {
    const inner = recorder();
    const held = new HeldEvents(inner, () => true, 2);
    for (const r of ['A', 'B', 'C']) held.event(obj, 'Normal', r, '');
    assert.deepEqual(inner.sent, ['C']);
    held.release();
    assert.deepEqual(inner.sent, ['C', 'A', 'B']);
  });
});
