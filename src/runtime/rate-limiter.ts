// Rate limiters for retries, after client-go's default_rate_limiters.go.
//
// A limiter answers "how long should this key wait before it is retried?" (`when`), and keeps
// per-key state until told to `forget` the key (after a success). `when` counts as a failure:
// call it once per retry, not to peek.
//
// - ItemExponentialFailureRateLimiter(base, max): base × 2^failures, capped at max, per key.
// - BucketRateLimiter(qps, burst): one token bucket shared by all keys; overall retry rate.
// - MaxOfRateLimiter(...): the longest wait any of them asks for.
// - defaultControllerRateLimiter(): max(exponential 5 ms .. 1000 s, bucket 10 qps burst 100),
//   client-go's DefaultTypedControllerRateLimiter.
//
// Not provided: client-go's ItemFastSlowRateLimiter and WithMaxWaitRateLimiter.

import { realClock } from './clock.ts';
import type { Clock } from './clock.ts';

export interface RateLimiter {
  /** The delay, in milliseconds, before `key` should be retried; records one more failure. */
  when(key: string): number;
  /** Clears the failure history of `key`. */
  forget(key: string): void;
  /** How many times `key` has been retried since it was last forgotten. */
  numRequeues(key: string): number;
}

export class ItemExponentialFailureRateLimiter implements RateLimiter {
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #failures = new Map<string, number>();

  constructor(baseMs = 5, maxMs = 1_000_000) {
    if (!(baseMs > 0) || !(maxMs >= baseMs)) {
      throw new Error(`exponential rate limiter needs 0 < base <= max, got base ${baseMs} max ${maxMs}`);
    }
    this.#baseMs = baseMs;
    this.#maxMs = maxMs;
  }

  when(key: string): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    // 2 ** failures becomes Infinity rather than overflowing, so the cap always applies.
    return Math.min(this.#baseMs * 2 ** failures, this.#maxMs);
  }

  forget(key: string): void {
    this.#failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.#failures.get(key) ?? 0;
  }
}

/**
 * A token bucket (golang.org/x/time/rate's Reserve): `burst` tokens, refilled at `qps` per
 * second; each `when` takes a token, and when none is left it returns the time until one will
 * be, reserving it (tokens go negative), so successive calls are spaced 1/qps apart.
 */
export class BucketRateLimiter implements RateLimiter {
  readonly #qps: number;
  readonly #burst: number;
  readonly #clock: Pick<Clock, 'now'>;
  #tokens: number;
  #last: number;

  constructor(qps = 10, burst = 100, clock: Pick<Clock, 'now'> = realClock) {
    if (!(qps > 0) || !(burst >= 1)) {
      throw new Error(`bucket rate limiter needs qps > 0 and burst >= 1, got qps ${qps} burst ${burst}`);
    }
    this.#qps = qps;
    this.#burst = burst;
    this.#clock = clock;
    this.#tokens = burst;
    this.#last = clock.now();
  }

  when(): number {
    const now = this.#clock.now();
    const elapsed = Math.max(0, now - this.#last);
    this.#last = now;
    this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed * this.#qps) / 1000) - 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.#qps) * 1000;
  }

  forget(): void {
    // The bucket is shared: a key's success does not refund its token.
  }

  numRequeues(): number {
    return 0;
  }
}

export class MaxOfRateLimiter implements RateLimiter {
  readonly #limiters: readonly RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    if (limiters.length === 0) throw new Error('MaxOfRateLimiter needs at least one limiter');
    this.#limiters = limiters;
  }

  when(key: string): number {
    // Every limiter must see the failure, so no short-circuit.
    return Math.max(...this.#limiters.map((l) => l.when(key)));
  }

  forget(key: string): void {
    for (const l of this.#limiters) l.forget(key);
  }

  numRequeues(key: string): number {
    return Math.max(...this.#limiters.map((l) => l.numRequeues(key)));
  }
}

export function defaultControllerRateLimiter(clock: Pick<Clock, 'now'> = realClock): RateLimiter {
  return new MaxOfRateLimiter(
    new ItemExponentialFailureRateLimiter(5, 1_000_000),
    new BucketRateLimiter(10, 100, clock),
  );
}
