import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createQueue } from '../../../src/runtime/queue.ts';
import { settle } from './manual-clock.ts';

describe('work queue', () => {
  it('hands keys out in the order they were first added', async () => {
    const q = createQueue();
    q.add('a');
    q.add('b');
    q.add('c');
    assert.equal(await q.get(), 'a');
    assert.equal(await q.get(), 'b');
    assert.equal(await q.get(), 'c');
  });

  it('hands a key added several times before it is taken out only once', async () => {
    const q = createQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    q.add('a');
    assert.equal(q.len(), 2);
    assert.equal(await q.get(), 'a');
    assert.equal(await q.get(), 'b');
    assert.equal(q.len(), 0);
  });

  it('never hands a key being processed to a second worker, and hands it out again after done', async () => {
    const q = createQueue();
    q.add('a');
    assert.equal(await q.get(), 'a');
    q.add('a'); // re-added while processing
    assert.equal(q.len(), 0, 'not queued while processing');
    let second: string | undefined = 'pending';
    void q.get().then((k) => (second = k));
    await settle();
    assert.equal(second, 'pending', 'a second worker does not get the key being processed');
    q.done('a');
    await settle();
    assert.equal(second, 'a', 'processed again after done');
  });

  it('does not hand a key out again after done when it was not re-added', async () => {
    const q = createQueue();
    q.add('a');
    await q.get();
    q.done('a');
    assert.equal(q.len(), 0);
  });

  it('wakes a waiting worker when a key is added', async () => {
    const q = createQueue();
    const got = q.get();
    q.add('x');
    assert.equal(await got, 'x');
  });

  it('resolves waiting gets with undefined on shutDown and ignores later adds', async () => {
    const q = createQueue();
    const a = q.get();
    const b = q.get();
    q.shutDown();
    assert.equal(await a, undefined);
    assert.equal(await b, undefined);
    q.add('late');
    assert.equal(q.len(), 0);
    assert.equal(await q.get(), undefined);
    assert.equal(q.shuttingDown(), true);
  });

  it('still hands out keys queued before shutDown, then undefined', async () => {
    const q = createQueue();
    q.add('a');
    q.add('b');
    q.shutDown();
    assert.equal(await q.get(), 'a');
    assert.equal(await q.get(), 'b');
    assert.equal(await q.get(), undefined);
  });

  it('shutDownWithDrain waits until every key handed out is done', async () => {
    const q = createQueue();
    q.add('a');
    q.add('b');
    await q.get();
    await q.get();
    let drained = false;
    void q.shutDownWithDrain().then(() => (drained = true));
    await settle();
    assert.equal(drained, false);
    q.done('a');
    await settle();
    assert.equal(drained, false);
    q.done('b');
    await settle();
    assert.equal(drained, true);
  });

  it('shutDownWithDrain resolves at once when nothing is being processed', async () => {
    const q = createQueue();
    await q.shutDownWithDrain();
  });

  it('a key re-added during processing is not lost when its done drains the queue', async () => {
    const q = createQueue();
    q.add('a');
    await q.get();
    q.add('a');
    let drained = false;
    void q.shutDownWithDrain().then(() => (drained = true));
    q.done('a');
    await settle();
    assert.equal(drained, true);
    assert.equal(await q.get(), 'a', 'queued before shutdown, so still handed out');
  });

  it('tells onIdle each time nothing is queued or processing, and not while a key re-added during processing waits', async () => {
    const q = createQueue();
    let idle = 0;
    const unsubscribe = q.onIdle(() => idle++);
    q.add('a');
    q.add('b');
    const a = await q.get();
    const b = await q.get();
    q.done(a ?? '');
    assert.equal(idle, 0, 'b is still processing');
    q.add('b');
    q.done(b ?? '');
    assert.equal(idle, 0, 'b was re-added while processing: queued again, not idle');
    q.done((await q.get()) ?? '');
    assert.equal(idle, 1);
    q.add('c');
    q.done((await q.get()) ?? '');
    assert.equal(idle, 2, 'told again after the next key');
    unsubscribe();
    q.add('d');
    q.done((await q.get()) ?? '');
    assert.equal(idle, 2, 'not after unsubscribing');
  });

  it('keeps FIFO order over many keys (compaction of the internal array)', async () => {
    const q = createQueue();
    for (let i = 0; i < 5000; i++) q.add(`k${i}`);
    for (let i = 0; i < 5000; i++) {
      const k = await q.get();
      assert.equal(k, `k${i}`);
      q.done(k);
      if (i % 7 === 0) q.add(`n${i}`);
    }
    const rest: string[] = [];
    while (q.len() > 0) rest.push((await q.get())!);
    assert.deepEqual(
      rest,
      Array.from({ length: 5000 }, (_, i) => i)
        .filter((i) => i % 7 === 0)
        .map((i) => `n${i}`),
    );
  });

  it('under any interleaving of adds, gets and dones: no key is held twice, and every added key is processed after its add', async () => {
    type Op = { kind: 'add'; key: string } | { kind: 'get' } | { kind: 'done'; index: number };
    const op = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), key: fc.constantFrom('a', 'b', 'c') }),
      fc.record({ kind: fc.constant('get' as const) }),
      fc.record({ kind: fc.constant('done' as const), index: fc.nat(5) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops: Op[]) => {
        const q = createQueue();
        const held: string[] = [];
        // A key added at step i must be handed out at some step after i.
        const owed = new Set<string>();
        const take = async (): Promise<void> => {
          const k = await q.get();
          assert.ok(k !== undefined);
          assert.ok(!held.includes(k), `key ${k} handed out while held`);
          held.push(k);
          owed.delete(k);
        };
        for (const o of ops) {
          switch (o.kind) {
            case 'add':
              q.add(o.key);
              owed.add(o.key);
              break;
            case 'get':
              if (q.len() > 0) await take();
              break;
            case 'done': {
              const k = held.splice(o.index % Math.max(1, held.length), 1)[0];
              if (k !== undefined) q.done(k);
              break;
            }
            default: {
              const never: never = o;
              throw new Error(`unexpected op ${String(never)}`);
            }
          }
        }
        // Finish: complete everything, draining the queue.
        for (;;) {
          while (held.length > 0) q.done(held.pop()!);
          if (q.len() === 0) break;
          await take();
        }
        assert.deepEqual([...owed], []);
      }),
    );
  });
});
