import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_TIMER_MS } from '../../../src/runtime/clock.ts';
import { createDelayingQueue } from '../../../src/runtime/delaying-queue.ts';
import { ReadyHeap } from '../../../src/runtime/ready-heap.ts';
import { ManualClock } from './manual-clock.ts';

const DAY = 24 * 60 * 60 * 1000;

describe('delaying queue', () => {
  it('adds a key only once its delay has passed', () => {
    const clock = new ManualClock();
    const q = createDelayingQueue({ clock });
    q.addAfter('a', 100);
    assert.equal(q.len(), 0);
    assert.equal(q.waiting(), 1);
    clock.advance(99);
    assert.equal(q.len(), 0);
    clock.advance(1);
    assert.equal(q.len(), 1);
    assert.equal(q.waiting(), 0);
  });

  it('adds at once when the delay is zero, negative or NaN', () => {
    const clock = new ManualClock();
    const q = createDelayingQueue({ clock });
    q.addAfter('zero', 0);
    q.addAfter('negative', -5);
    q.addAfter('nan', Number.NaN);
    assert.equal(q.len(), 3);
    assert.equal(clock.pending(), 0);
  });

  it('keeps the EARLIER ready time when a waiting key is added again', () => {
    const clock = new ManualClock();
    const q = createDelayingQueue({ clock });
    q.addAfter('a', 1000);
    q.addAfter('a', 100); // earlier: wins
    q.addAfter('a', 5000); // later: ignored
    assert.equal(q.waiting(), 1);
    clock.advance(100);
    assert.equal(q.len(), 1);
    clock.advance(10_000);
    assert.equal(q.len(), 1, 'the later request did not add it a second time');
  });

  it('releases keys in ready-time order, ties in the order they were scheduled', async () => {
    const clock = new ManualClock();
    const q = createDelayingQueue({ clock });
    q.addAfter('c', 300);
    q.addAfter('a', 100);
    q.addAfter('b1', 200);
    q.addAfter('b2', 200);
    clock.advance(1000);
    const got = [await q.get(), await q.get(), await q.get(), await q.get()];
    assert.deepEqual(got, ['a', 'b1', 'b2', 'c']);
  });

  it('keeps a single timer, aimed at the earliest waiting key', () => {
    const clock = new ManualClock();
    const q = createDelayingQueue({ clock });
    q.addAfter('late', 10_000);
    q.addAfter('soon', 10);
    q.addAfter('middle', 500);
    assert.equal(clock.pending(), 1);
    assert.equal(clock.requested.at(-1), 10);
    clock.advance(10);
    assert.equal(clock.pending(), 1);
    assert.equal(clock.requested.at(-1), 490);
  });

  it("waits a day, and 40 days (beyond setTimeout's limit), asking the clock for at most 2^31-1 ms at a time", () => {
    const clock = new ManualClock();
    const q = createDelayingQueue({ clock });
    q.addAfter('daily', DAY);
    q.addAfter('monthly', 40 * DAY); // 3.456e9 ms > 2^31-1
    clock.advance(DAY - 1);
    assert.equal(q.len(), 0);
    clock.advance(1);
    assert.equal(q.len(), 1);
    clock.advance(39 * DAY - 1);
    assert.equal(q.len(), 1);
    clock.advance(1);
    assert.equal(q.len(), 2);
    assert.ok(
      clock.requested.every((ms) => ms <= MAX_TIMER_MS),
      `requested ${clock.requested.join(', ')}`,
    );
  });

  it('drops waiting keys and cancels its timer on shutDown, and ignores addAfter afterwards', () => {
    const clock = new ManualClock();
    const q = createDelayingQueue({ clock });
    q.addAfter('a', 100);
    q.shutDown();
    assert.equal(clock.pending(), 0);
    q.addAfter('b', 100);
    clock.advance(1000);
    assert.equal(q.len(), 0);
    assert.equal(q.waiting(), 0);
  });

  it('a key that becomes ready while being processed is processed again after done', async () => {
    const clock = new ManualClock();
    const q = createDelayingQueue({ clock });
    q.add('a');
    assert.equal(await q.get(), 'a');
    q.addAfter('a', 50);
    clock.advance(50);
    assert.equal(q.len(), 0, 'not queued while processing');
    q.done('a');
    assert.equal(q.len(), 1);
    assert.equal(await q.get(), 'a');
  });
});

describe('ready heap', () => {
  it('pops in (readyAt, insertion) order under any sequence of sets', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g'), fc.integer({ min: 0, max: 20 })),
          {
            maxLength: 50,
          },
        ),
        (sets) => {
          const heap = new ReadyHeap();
          const model = new Map<string, { at: number; seq: number }>();
          sets.forEach(([key, at], seq) => {
            heap.set(key, at);
            model.set(key, { at, seq });
          });
          const expected = [...model.entries()]
            .sort(([, x], [, y]) => x.at - y.at || x.seq - y.seq)
            .map(([key, { at }]) => ({ key, readyAt: at }));
          const popped: { key: string; readyAt: number }[] = [];
          for (let e = heap.pop(); e !== undefined; e = heap.pop()) popped.push(e);
          assert.deepEqual(popped, expected);
          assert.equal(heap.size, 0);
        },
      ),
    );
  });

  it('reports a waiting key ready time and forgets popped keys', () => {
    const heap = new ReadyHeap();
    heap.set('a', 5);
    assert.equal(heap.readyAt('a'), 5);
    assert.deepEqual(heap.peek(), { key: 'a', readyAt: 5 });
    heap.pop();
    assert.equal(heap.readyAt('a'), undefined);
    assert.equal(heap.pop(), undefined);
  });
});
