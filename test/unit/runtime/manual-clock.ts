// A Clock for unit tests: time moves only when the test says so.

import type { Cancel, Clock } from '../../../src/runtime/clock.ts';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers = new Set<Timer>();
  /** Every delay asked of setTimer, in order. */
  readonly requested: number[] = [];

  constructor(start = 1_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, fn: () => void): Cancel {
    this.requested.push(ms);
    const timer: Timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn };
    this.#timers.add(timer);
    return () => {
      this.#timers.delete(timer);
    };
  }

  /** Timers armed and not yet fired or cancelled. */
  pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing due timers in time order (also those they arm). */
  advance(ms: number): void {
    const target = this.#now + ms;
    while (this.#fireNext(target));
    this.#now = target;
  }

  /**
   * As `advance`, but lets the promise chains each timer starts run (`between`) before the
   * next timer fires, as a real event loop would.
   */
  async advanceSettling(ms: number, between: () => Promise<void>): Promise<void> {
    const target = this.#now + ms;
    await between();
    while (this.#fireNext(target)) await between();
    this.#now = target;
    await between();
  }

  /** Moves time forward without running any timer: a process that was paused. */
  jump(ms: number): void {
    this.#now += ms;
  }

  /** Fires the earliest timer due by `target`; false when there is none. */
  #fireNext(target: number): boolean {
    let next: Timer | undefined;
    for (const t of this.#timers) {
      if (
        t.at <= target &&
        (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq))
      ) {
        next = t;
      }
    }
    if (next === undefined) return false;
    this.#timers.delete(next);
    this.#now = Math.max(this.#now, next.at);
    next.fn();
    return true;
  }
}

/**
 * Lets pending promise callbacks run: several turns of the event loop, each with every microtask
 * it queues (a worker returns to the event loop between keys). Timers of the ManualClock stay put.
 */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
