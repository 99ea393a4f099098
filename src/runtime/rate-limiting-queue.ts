// A delaying work queue with per-key retry back-off (client-go's rate_limiting_queue.go).
//
// Guarantees, on top of the delaying queue's:
// - `addRateLimited(key)` adds the key after the delay the rate limiter asks for, and counts a
//   failure for it; `forget(key)` clears that count (call it after a success, or the next
//   failure of the key waits longer than it should); `numRequeues(key)` reads it.
//
// It does not forget a key by itself: a key that keeps failing and is never forgotten keeps its
// count (capped delay) for the life of the queue.

import { realClock } from './clock.ts';
import type { Clock } from './clock.ts';
import { createDelayingQueue } from './delaying-queue.ts';
import type { DelayingQueue } from './delaying-queue.ts';
import type { Lane } from './queue.ts';
import { defaultControllerRateLimiter } from './rate-limiter.ts';
import type { RateLimiter } from './rate-limiter.ts';

export interface RateLimitingQueue extends DelayingQueue {
  addRateLimited(key: string, lane?: Lane): void;
  forget(key: string): void;
  numRequeues(key: string): number;
}

export interface RateLimitingQueueOptions {
  clock?: Clock;
  /** `defaultControllerRateLimiter(clock)` when absent. */
  rateLimiter?: RateLimiter;
  /** The delaying queue to feed; a new one on `clock` when absent. */
  queue?: DelayingQueue;
}

export function createRateLimitingQueue(options: RateLimitingQueueOptions = {}): RateLimitingQueue {
  const clock = options.clock ?? realClock;
  const queue = options.queue ?? createDelayingQueue({ clock });
  const limiter = options.rateLimiter ?? defaultControllerRateLimiter(clock);
  return {
    add: (key, lane) => {
      queue.add(key, lane);
    },
    get: (only) => queue.get(only),
    done: (key) => {
      queue.done(key);
    },
    len: () => queue.len(),
    laneOf: (key) => queue.laneOf(key),
    dueCount: () => queue.dueCount(),
    onDueDrained: (fn) => queue.onDueDrained(fn),
    onIdle: (fn) => queue.onIdle(fn),
    waiting: () => queue.waiting(),
    shutDown: () => {
      queue.shutDown();
    },
    shutDownWithDrain: () => queue.shutDownWithDrain(),
    shuttingDown: () => queue.shuttingDown(),
    addAfter: (key, ms, lane) => {
      queue.addAfter(key, ms, lane);
    },
    addRateLimited: (key, lane) => {
      // A key refused by a shut-down queue is not a failure worth counting.
      if (!queue.shuttingDown()) queue.addAfter(key, limiter.when(key), lane);
    },
    forget: (key) => {
      limiter.forget(key);
    },
    numRequeues: (key) => limiter.numRequeues(key),
  };
}
