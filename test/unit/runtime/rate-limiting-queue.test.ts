import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ItemExponentialFailureRateLimiter } from '../../../src/runtime/rate-limiter.ts';
import { createRateLimitingQueue } from '../../../src/runtime/rate-limiting-queue.ts';
import { ManualClock } from './manual-clock.ts';

describe('rate-limiting queue', () => {
  it('addRateLimited delays a key by its growing back-off; forget resets it', () => {
    const clock = new ManualClock();
    const q = createRateLimitingQueue({ clock, rateLimiter: new ItemExponentialFailureRateLimiter(5, 1000) });
    q.addRateLimited('k');
    assert.equal(q.numRequeues('k'), 1);
    clock.advance(4);
    assert.equal(q.len(), 0);
    clock.advance(1);
    assert.equal(q.len(), 1);
    q.addRateLimited('k2');
    q.addRateLimited('k2');
    assert.equal(q.numRequeues('k2'), 2);
    q.forget('k2');
    assert.equal(q.numRequeues('k2'), 0);
  });

  it('does not count a failure for a key refused because the queue is shut down', () => {
    const clock = new ManualClock();
    const q = createRateLimitingQueue({ clock });
    q.shutDown();
    q.addRateLimited('k');
    assert.equal(q.numRequeues('k'), 0);
    assert.equal(clock.pending(), 0);
  });

  it('passes add, addAfter and the queue operations through to the layers below', async () => {
    const clock = new ManualClock();
    const q = createRateLimitingQueue({ clock });
    q.add('now');
    q.addAfter('later', 1000);
    assert.equal(q.len(), 1);
    assert.equal(q.waiting(), 1);
    assert.equal(await q.get(), 'now');
    q.done('now');
    clock.advance(1000);
    assert.equal(await q.get(), 'later');
    const drained = q.shutDownWithDrain();
    assert.equal(q.shuttingDown(), true);
    q.done('later');
    await drained;
  });
});
