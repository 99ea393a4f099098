import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BucketRateLimiter,
  ItemExponentialFailureRateLimiter,
  MaxOfRateLimiter,
  defaultControllerRateLimiter,
} from '../../../src/runtime/rate-limiter.ts';
import { ManualClock } from './manual-clock.ts';

describe('exponential failure rate limiter', () => {
  it('doubles the delay per failure of a key from 5 ms, up to 1000 s', () => {
    const l = new ItemExponentialFailureRateLimiter();
    const delays = Array.from({ length: 20 }, () => l.when('k'));
    assert.deepEqual(delays.slice(0, 5), [5, 10, 20, 40, 80]);
    assert.equal(delays[17], 5 * 2 ** 17); // 655,360 ms
    assert.equal(delays[18], 1_000_000); // capped
    assert.equal(delays[19], 1_000_000);
    assert.equal(l.numRequeues('k'), 20);
  });

  it('stays at the cap, without overflow, after thousands of failures', () => {
    const l = new ItemExponentialFailureRateLimiter(5, 1_000_000);
    let last = 0;
    for (let i = 0; i < 5000; i++) last = l.when('k');
    assert.equal(last, 1_000_000);
  });

  it('tracks keys separately and starts over after forget', () => {
    const l = new ItemExponentialFailureRateLimiter(5, 1000);
    l.when('a');
    l.when('a');
    assert.equal(l.when('b'), 5);
    assert.equal(l.numRequeues('a'), 2);
    l.forget('a');
    assert.equal(l.numRequeues('a'), 0);
    assert.equal(l.when('a'), 5);
  });

  it('refuses a base that is not positive or a max below the base', () => {
    assert.throws(() => new ItemExponentialFailureRateLimiter(0, 10));
    assert.throws(() => new ItemExponentialFailureRateLimiter(10, 5));
  });
});

describe('bucket rate limiter', () => {
  it('lets a burst through without delay, then spaces retries 1/qps apart', () => {
    const clock = new ManualClock();
    const l = new BucketRateLimiter(10, 100, clock);
    for (let i = 0; i < 100; i++) assert.equal(l.when(), 0, `burst item ${i}`);
    assert.equal(l.when(), 100);
    assert.equal(l.when(), 200);
    assert.equal(l.when(), 300);
  });

  it('refills at qps tokens per second', () => {
    const clock = new ManualClock();
    const l = new BucketRateLimiter(10, 100, clock);
    for (let i = 0; i < 100; i++) l.when();
    clock.advance(1000); // 10 tokens back
    for (let i = 0; i < 10; i++) assert.equal(l.when(), 0);
    assert.equal(l.when(), 100);
  });

  it('never holds more than burst tokens however long it idles', () => {
    const clock = new ManualClock();
    const l = new BucketRateLimiter(10, 3, clock);
    clock.advance(3_600_000);
    assert.deepEqual([l.when(), l.when(), l.when(), l.when()], [0, 0, 0, 100]);
  });

  it('is shared by all keys and has no per-key state', () => {
    const clock = new ManualClock();
    const l = new BucketRateLimiter(1, 1, clock);
    assert.equal(l.when(), 0);
    assert.equal(l.when(), 1000);
    l.forget();
    assert.equal(l.numRequeues(), 0);
  });
});

describe('max-of rate limiter', () => {
  it('waits as long as the slowest limiter says, and every limiter counts the failure', () => {
    const clock = new ManualClock();
    const exp = new ItemExponentialFailureRateLimiter(5, 1_000_000);
    const bucket = new BucketRateLimiter(10, 2, clock);
    const l = new MaxOfRateLimiter(exp, bucket);
    assert.equal(l.when('a'), 5); // bucket 0, exponential 5
    assert.equal(l.when('a'), 10); // bucket 0
    assert.equal(l.when('b'), 100); // bucket empty: 100 ms; exponential for b: 5
    assert.equal(l.numRequeues('a'), 2);
    l.forget('a');
    assert.equal(l.numRequeues('a'), 0);
  });

  it('defaultControllerRateLimiter is max(5 ms exponential capped at 1000 s, 10 qps burst 100)', () => {
    const clock = new ManualClock();
    const l = defaultControllerRateLimiter(clock);
    assert.equal(l.when('x'), 5);
    for (let i = 0; i < 98; i++) l.when(`y${i}`);
    assert.equal(l.when('z'), 5, 'the 100th token still free');
    assert.equal(l.when('w'), 100, 'the 101st waits for the bucket');
    for (let i = 0; i < 30; i++) l.when('x');
    clock.advance(10_000_000);
    assert.equal(l.when('x'), 1_000_000);
  });
});
